package xconnect

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestSASLLine(t *testing.T) {
	rw := newSASLRewriter(1000) // "1000" = 31303030
	for _, tc := range []struct {
		in, toP, toC string
		begin        bool
	}{
		{"AUTH EXTERNAL 30", "AUTH EXTERNAL 31303030\r\n", "", false},       // root claimed
		{"AUTH EXTERNAL 31303030", "AUTH EXTERNAL 31303030\r\n", "", false}, // the same, rewritten anyway
		{"AUTH EXTERNAL", "AUTH EXTERNAL\r\n", "", false},                   // the bus asks with DATA
		{"DATA", "DATA 31303030\r\n", "", false},
		{"DATA 30", "DATA 31303030\r\n", "", false},
		{"AUTH", "", "REJECTED EXTERNAL\r\n", false},
		{"AUTH ANONYMOUS 6c6962", "", "REJECTED EXTERNAL\r\n", false},
		{"AUTH DBUS_COOKIE_SHA1 30", "", "REJECTED EXTERNAL\r\n", false},
		{"AUTH external 30", "", "REJECTED EXTERNAL\r\n", false},
		{"NEGOTIATE_UNIX_FD", "NEGOTIATE_UNIX_FD\r\n", "", false},
		{"CANCEL", "CANCEL\r\n", "", false},
		{"ERROR \"x\"", "ERROR \"x\"\r\n", "", false},
		{"BEGIN", "BEGIN\r\n", "", true},
		{"BEGIN now", "", "ERROR \"unknown command\"\r\n", false},
		{"OK 1234", "", "ERROR \"unknown command\"\r\n", false},
		{"AUTH EXTERNAL 30\x00", "", "ERROR \"not printable ASCII\"\r\n", false},
		{"", "", "ERROR \"unknown command\"\r\n", false},
	} {
		toP, toC, begin := rw.line(tc.in)
		if toP != tc.toP || toC != tc.toC || begin != tc.begin {
			t.Errorf("line(%q) = %q, %q, %v; want %q, %q, %v", tc.in, toP, toC, begin, tc.toP, tc.toC, tc.begin)
		}
	}
}

func TestRoleUser(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken\nop:x:1000:100::/:/bin/false\nodd:x:12a:1::/:/x\nsvc:x:2000:2001::/:/x\n"
	for _, tc := range []struct {
		role     string
		uid, gid uint32
		ok       bool
	}{
		{"op", 1000, 100, true},
		{"root", 0, 0, true},
		{"2000", 2000, 2001, true}, // numeric: its entry's gid
		{"4242", 4242, 4242, true}, // numeric without entry
		{"odd", 0, 0, false},
		{"nobody", 0, 0, false},
		{"", 0, 0, false},
		{"op:x", 0, 0, false},
	} {
		uid, gid, ok := roleUser(strings.NewReader(passwd), tc.role)
		if uid != tc.uid || gid != tc.gid || ok != tc.ok {
			t.Errorf("roleUser(%q) = %d, %d, %v; want %d, %d, %v", tc.role, uid, gid, ok, tc.uid, tc.gid, tc.ok)
		}
	}
}

func TestMapID(t *testing.T) {
	m := []byte("         0     100000      65536\n     65536          0          1\n")
	for _, tc := range []struct {
		in, out uint32
		ok      bool
	}{{0, 100000, true}, {1000, 101000, true}, {65535, 165535, true}, {65536, 0, true}, {65537, 0, false}} {
		if out, ok := mapID(m, tc.in); out != tc.out || ok != tc.ok {
			t.Errorf("mapID(%d) = %d, %v; want %d, %v", tc.in, out, ok, tc.out, tc.ok)
		}
	}
	if out, ok := mapID([]byte("0 0 4294967295\n"), 4242); out != 4242 || !ok {
		t.Errorf("identity map: mapID(4242) = %d, %v", out, ok)
	}
}

// FuzzDBusAuth feeds arbitrary consumer bytes to the dbus plugin's
// authentication: whatever the consumer sends, the provider gets the NUL
// byte first, then only well-formed lines of the allowed commands, every
// identity in them the link's, and after BEGIN the consumer's bytes
// unchanged.
func FuzzDBusAuth(f *testing.F) {
	f.Add([]byte("\x00AUTH EXTERNAL 30\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\nl\x01\x00\x01"))
	f.Add([]byte("\x00AUTH EXTERNAL\r\nDATA\r\nBEGIN\r\n"))
	f.Add([]byte("\x00AUTH\r\nAUTH ANONYMOUS 6c6962\r\nAUTH DBUS_COOKIE_SHA1 30\r\nDATA 3130\r\nCANCEL\r\nBEGIN\r\nBEGIN\r\n"))
	f.Add([]byte("AUTH EXTERNAL 30\r\n"))
	f.Add([]byte("\x00AUTH EXTERNAL 30\nBEGIN\r\n"))
	f.Add([]byte("\x00" + strings.Repeat("A", maxSASLLine+10)))
	rw := newSASLRewriter(1000)
	f.Fuzz(func(t *testing.T, in []byte) {
		consumer, proxySide := socketPair(t)
		provider, providerSide := socketPair(t)
		defer consumer.Close()
		defer providerSide.Close()
		deadline := time.Now().Add(5 * time.Second)
		for _, c := range []*net.UnixConn{consumer, proxySide, provider, providerSide} {
			_ = c.SetDeadline(deadline)
		}
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(providerSide)
			got <- b
		}()
		go func() { _, _ = io.Copy(io.Discard, consumer) }()
		type res struct {
			rest []byte
			err  error
		}
		done := make(chan res, 1)
		go func() {
			rest, fds, err := authenticate(proxySide, provider, rw)
			closeFDs(fds)
			if err == nil {
				_, _ = provider.Write(rest)
				_, _ = io.Copy(provider, proxySide)
			}
			provider.Close()
			done <- res{rest, err}
		}()
		_, _ = consumer.Write(in)
		_ = consumer.CloseWrite()
		r := <-done
		out := <-got
		if len(out) == 0 {
			return
		}
		if out[0] != 0 || len(in) == 0 || in[0] != 0 {
			t.Fatalf("provider got %q first for input %q", out[:1], in)
		}
		br := bufio.NewReader(bytes.NewReader(out[1:]))
		for {
			l, err := br.ReadString('\n')
			if err == io.EOF && l == "" {
				if r.err == nil {
					t.Fatalf("authentication ended without BEGIN reaching the provider, input %q", in)
				}
				return
			}
			if !strings.HasSuffix(l, "\r\n") {
				t.Fatalf("provider got an unterminated line %q for input %q", l, in)
			}
			switch l = strings.TrimSuffix(l, "\r\n"); {
			case l == "AUTH EXTERNAL 31303030", l == "AUTH EXTERNAL", l == "DATA 31303030",
				l == "CANCEL", l == "NEGOTIATE_UNIX_FD", strings.HasPrefix(l, "ERROR") && !strings.ContainsAny(l, "\r\n\x00"):
			case l == "BEGIN":
				rest, _ := io.ReadAll(br)
				tail := append([]byte("BEGIN\r\n"), rest...)
				if i := len(in) - len(tail); !bytes.HasSuffix(in, tail) || i != 1 && in[i-1] != '\n' {
					t.Fatalf("after BEGIN the provider got %q, input %q", rest, in)
				}
				return
			default:
				t.Fatalf("provider got line %q for input %q", l, in)
			}
		}
	})
}
