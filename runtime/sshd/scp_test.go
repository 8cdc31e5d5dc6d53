package sshd

import (
	"bytes"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// scpO runs the real scp in legacy mode (-O: `scp -f` on the server).
func (c *client) scpO(t *testing.T, srv *Server, extra ...string) (string, error) {
	t.Helper()
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	cmd := exec.Command("scp", append(append(c.args(port, "-P"), "-O", "-o", "User=/"), extra...)...)
	cmd.Env = append(os.Environ(), "HOME="+c.dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestLegacySCP copies files and a tree out with `scp -O` (OpenSSH before
// 9.0 speaks only this protocol); errors reach the client.
func TestLegacySCP(t *testing.T) {
	c := newClient(t)
	srv := start(t, static(c.pub), Options{})
	src := t.TempDir()
	data := make([]byte, 1<<20+3)
	rand.Read(data)
	os.WriteFile(filepath.Join(src, "corepv"), data, 0o640)
	os.MkdirAll(filepath.Join(src, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "tree", "a"), []byte("a\n"), 0o644)
	os.WriteFile(filepath.Join(src, "tree", "sub", "b c"), []byte("b\n"), 0o600)
	os.WriteFile(filepath.Join(src, "tree", "empty"), nil, 0o644)

	dst := t.TempDir()
	if out, err := c.scpO(t, srv, "-p", "127.0.0.1:"+filepath.Join(src, "corepv"), dst); err != nil {
		t.Fatalf("scp -O corepv: %v: %s", err, out)
	}
	got, _ := os.ReadFile(filepath.Join(dst, "corepv"))
	st, _ := os.Stat(filepath.Join(dst, "corepv"))
	sst, _ := os.Stat(filepath.Join(src, "corepv"))
	if !bytes.Equal(got, data) || st.Mode().Perm() != 0o640 || !st.ModTime().Equal(sst.ModTime().Truncate(1e9)) {
		t.Errorf("scp -O -p corepv: %d bytes, mode %v, mtime %v; want %d, 0640, %v", len(got), st.Mode(), st.ModTime(), len(data), sst.ModTime())
	}
	if out, err := c.scpO(t, srv, "-r", "127.0.0.1:"+filepath.Join(src, "tree"), dst); err != nil {
		t.Fatalf("scp -O -r: %v: %s", err, out)
	}
	for name, want := range map[string]string{"tree/a": "a\n", "tree/sub/b c": "b\n", "tree/empty": ""} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Errorf("scp -O -r: %s = %q, %v; want %q", name, b, err, want)
		}
	}
	// a glob, as the remote shell expanded it
	globDst := t.TempDir()
	if out, err := c.scpO(t, srv, "127.0.0.1:"+filepath.Join(src, "tree", "*"), globDst); err == nil || !strings.Contains(out, "not a regular file") {
		t.Errorf("scp -O tree/* (with a directory) = %v: %s; want the directory refused", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(globDst, "a")); string(b) != "a\n" {
		t.Errorf("scp -O tree/*: a = %q, want the files copied beside the refused directory", b)
	}
	out, err := c.scpO(t, srv, "127.0.0.1:"+filepath.Join(src, "missing"), dst)
	if err == nil || !strings.Contains(out, "missing") {
		t.Errorf("scp -O of a missing file = %v: %s; want an error naming it", err, out)
	}
	// to the device: SFTP only
	if out, err := c.scpO(t, srv, filepath.Join(src, "corepv"), "127.0.0.1:"+filepath.Join(dst, "up")); err == nil || !strings.Contains(out, "SFTP") {
		t.Errorf("scp -O to the device = %v: %s; want refused, naming SFTP", err, out)
	}
}

func TestSCPCommand(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x1"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "x2"), nil, 0o644)
	for _, tc := range []struct {
		cmd       string
		paths     []string
		rec, ok   bool
		wantError bool
	}{
		{"scp -f /storage/corepv", []string{"/storage/corepv"}, false, true, false},
		{"scp -v -r -p -f -- '/a b' \"/c\\\"d\" e\\ f", []string{"/a b", `/c"d`, "e f"}, true, true, false},
		{"scp -f " + dir + "/x*", []string{dir + "/x1", dir + "/x2"}, false, true, false},
		{"scp -t /tmp", nil, false, true, true},
		{"scp -f", nil, false, true, true},
		{"scp -z -f a", nil, false, true, true},
		{"cat /storage/corepv", nil, false, false, false},
		{"scp -f 'open", nil, false, false, false},
		{"scpx -f a", nil, false, false, false},
	} {
		paths, rec, _, ok, err := scpCommand(tc.cmd)
		if ok != tc.ok || (err != nil) != tc.wantError || rec != tc.rec || (!tc.wantError && !reflect.DeepEqual(paths, tc.paths)) {
			t.Errorf("scpCommand(%q) = %q, rec %v, ok %v, %v; want %q, %v, %v, error %v", tc.cmd, paths, rec, ok, err, tc.paths, tc.rec, tc.ok, tc.wantError)
		}
	}
}

func FuzzShellWords(f *testing.F) {
	f.Add(`scp -f -- 'a b' "c\"d" e\ f`)
	f.Add(`"unterminated`)
	f.Fuzz(func(t *testing.T, s string) {
		words, err := shellWords(s)
		if err == nil {
			for _, w := range words {
				if len(w) > len(s) {
					t.Errorf("word %q longer than the input", w)
				}
			}
		}
	})
}
