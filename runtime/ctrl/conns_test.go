package ctrl

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// flood opens n connections to path, sends each a request and returns
// those the server answered (kept open) and how many it closed unanswered.
func flood(t *testing.T, path string, n int) (open []net.Conn, refused int) {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("unix", path)
		if err != nil {
			refused++ // the backlog was full
			continue
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		if answered(c, "/buildinfo") {
			open = append(open, c)
			continue
		}
		c.Close()
		refused++
	}
	t.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	return open, refused
}

// answered sends GET path on c and reports whether any answer came back
// (a connection refused at accept is closed without one).
func answered(c net.Conn, path string) bool {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	req, _ := http.NewRequest("GET", "http://localhost"+path, nil)
	if err := req.Write(c); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// TestConnFlood: non-mgmt callers flooding the socket get at most their
// share, and host and mgmt callers are still served from the reserve
// (issue 11, defect 6).
func TestConnFlood(t *testing.T) {
	proc := t.TempDir()
	self := os.Getpid()
	h := New(Options{ProcRoot: proc, BuildInfo: "bi",
		Platforms: platforms{"admin": true, "app": false, "web": false, "db": false, "log": false},
		MaxConns:  40, MaxCallerConns: 8, ReservedConns: 10})
	_, path := listen(t, h)

	// Four nobody platforms: 8 connections each, 30 together (40 - 10).
	want := map[string]int{"app": 8, "web": 8, "db": 8, "log": 6}
	for _, name := range []string{"app", "web", "db", "log"} {
		fakeCgroup(t, proc, self, "0::/lxc/"+name+"\n")
		open, refused := flood(t, path, 100)
		if len(open) != want[name] || refused != 100-want[name] {
			t.Errorf("flood from %s: %d kept, %d refused, want %d kept", name, len(open), refused, want[name])
		}
	}
	// Unknown callers share one bound, and none is left for them anyway.
	fakeCgroup(t, proc, self, "0::/lxc/stranger\n")
	if open, _ := flood(t, path, 10); len(open) != 0 {
		t.Errorf("flood from an unknown caller: %d kept, want 0", len(open))
	}

	// The host and a mgmt platform share the reserve.
	var held []net.Conn
	for i := range 10 {
		cg := "0::/\n"
		if i%2 == 1 {
			cg = "0::/lxc/admin\n"
		}
		fakeCgroup(t, proc, self, cg)
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := get(t, c, "/buildinfo"); got != http.StatusOK {
			t.Errorf("GET /buildinfo as %q during the flood = %d, want 200", cg, got)
		}
		held = append(held, c)
	}
	// The total is reached: even the host waits for a slot now.
	fakeCgroup(t, proc, self, "0::/\n")
	if open, _ := flood(t, path, 1); len(open) != 0 {
		t.Errorf("connection over MaxConns kept open")
	}

	// A closed connection gives its slot back.
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		ok := answered(c, "/buildinfo")
		c.Close()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot of a closed connection never released")
		}
	}
}

// TestConnTimeouts: a connection that never sends a request, or stays idle
// after one, is closed and its slot freed.
func TestConnTimeouts(t *testing.T) {
	proc := t.TempDir()
	self := os.Getpid()
	fakeCgroup(t, proc, self, "0::/lxc/app\n")
	h := New(Options{ProcRoot: proc, BuildInfo: "bi", Platforms: platforms{"app": false},
		MaxCallerConns: 2, ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 100 * time.Millisecond})
	_, path := listen(t, h)
	for _, request := range []bool{false, true} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		if request && !answered(c, "/buildinfo") {
			t.Fatal("first connection refused")
		}
		// The server closes it: the read ends (the deadline only guards
		// the test against a hang).
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("silent connection (request sent %v) got data", request)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("silent connection (request sent %v) never closed by the server", request)
		}
		c.Close()
	}
}

// TestConnFloodFigures floods with the default limits and reports the
// figures of issue 11's closing note (go test -run ConnFloodFigures -v).
func TestConnFloodFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("figures only")
	}
	proc := t.TempDir()
	self := os.Getpid()
	h := New(Options{ProcRoot: proc, BuildInfo: "bi", Platforms: platforms{"app": false}})
	_, path := listen(t, h)
	fakeCgroup(t, proc, self, "0::/lxc/app\n")
	const n = 5000
	open, refused := flood(t, path, n)
	fakeCgroup(t, proc, self, "0::/\n")
	const hostN = 200
	ok := 0
	for range hostN {
		c, err := net.Dial("unix", path)
		if err != nil {
			continue
		}
		if get(t, c, "/buildinfo") == http.StatusOK {
			ok++
		}
		c.Close()
	}
	t.Logf("flood from one nobody caller: %d connections attempted, %d kept open, %d closed at accept; host: %d/%d requests answered 200",
		n, len(open), refused, ok, hostN)
	if len(open) > DefaultMaxCallerConns || ok != hostN {
		t.Errorf("kept %d (want ≤ %d), host %d/%d", len(open), DefaultMaxCallerConns, ok, hostN)
	}
}
