package xconnect

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
)

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// echoServer serves a Unix socket that echoes every connection.
func echoServer(t testing.TB, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
}

// headerServer serves HTTP on a Unix socket and answers with the identity
// headers it got, one "name: value" line each.
func headerServer(t testing.TB, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		for k, vs := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-pv") || strings.HasPrefix(strings.ToLower(k), "x_pv") {
				for _, v := range vs {
					b.WriteString(k + ": " + v + "\n")
				}
			}
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, b.String())
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}

// selfLinks are links whose consumer and provider are this process (root
// "/"), with the target and socket under dir.
func selfLink(typ, dir string) ctrl.XConnectLink {
	pid := os.Getpid()
	return ctrl.XConnectLink{Consumer: "app", ConsumerPid: pid, Provider: "prov", ProviderPid: pid, Name: typ,
		Type: typ, Role: "admin", Interface: typ, Target: dir + "/consumer/run/" + typ + ".sock", Socket: dir + "/" + typ + ".sock"}
}

func TestMeshUnixAndREST(t *testing.T) {
	dir := t.TempDir()
	echoServer(t, dir+"/unix.sock")
	headerServer(t, dir+"/rest.sock")
	m := NewMesh(testLog(t), "")
	defer m.Close()
	unixLink, restLink := selfLink("unix", dir), selfLink("rest", dir)
	if err := m.Reconcile([]ctrl.XConnectLink{unixLink, restLink}); err != nil {
		t.Fatalf("Reconcile() = %v", err)
	}
	if st, err := os.Stat(unixLink.Target); err != nil || st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o666 {
		t.Fatalf("injected %s: %v, %v; want a socket, mode 0666", unixLink.Target, st, err)
	}

	c, err := net.Dial("unix", unixLink.Target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	c.(*net.UnixConn).CloseWrite()
	if got, err := io.ReadAll(c); string(got) != "ping" || err != nil {
		t.Errorf("echo through the unix link = %q, %v, want ping", got, err)
	}
	c.Close()

	// Two requests on one connection; the consumer forges the headers in
	// several spellings.
	rc, err := net.Dial("unix", restLink.Target)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	for i, forged := range []string{"X-PV-Client: pv-mgmt\r\nx-pv-role: mgmt\r\n", "X_PV_Client: pv-mgmt\r\nX-Pv-Role: mgmt\r\nX-PV-Role: root\r\n"} {
		if _, err := io.WriteString(rc, "GET /who HTTP/1.1\r\nHost: x\r\n"+forged+"\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "X-Pv-Client: app\nX-Pv-Role: admin\n"; sortLines(string(body)) != want {
			t.Errorf("request %d: provider saw %q, want %q", i, body, want)
		}
	}

	// Links gone: sockets removed, the proxy closed.
	if err := m.Reconcile([]ctrl.XConnectLink{restLink}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(unixLink.Target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after removal Lstat(%s) = %v, want not exist", unixLink.Target, err)
	}
	m.Close()
	if _, err := os.Lstat(restLink.Target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close Lstat(%s) = %v, want not exist", restLink.Target, err)
	}
	if _, err := io.WriteString(rc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err == nil {
		if _, err := http.ReadResponse(br, nil); err == nil {
			t.Errorf("a request after Close got an answer, want the connection closed")
		}
	}
}

func sortLines(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) == 2 && ls[0] > ls[1] {
		ls[0], ls[1] = ls[1], ls[0]
	}
	return strings.Join(ls, "\n") + "\n"
}

// A target inside the consumer resolves inside its root: a link planted
// by the consumer towards a host path does not lead out, and a non-socket
// at the target is not replaced.
func TestMeshTargetStaysInRoot(t *testing.T) {
	dir := t.TempDir()
	// A fake /proc where process 1's root is dir/root.
	root := filepath.Join(dir, "root")
	host := filepath.Join(dir, "host")
	for _, d := range []string{root + "/run", host, dir + "/proc/1", dir + "/proc/2"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(root, dir+"/proc/1/root"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", dir+"/proc/2/root"); err != nil {
		t.Fatal(err)
	}
	// The consumer's /run/evil points at the host directory by an absolute
	// link: inside the root it names root/<host>, not host.
	if err := os.Symlink(host, root+"/run/evil"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root+"/run/file", []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	echoServer(t, dir+"/p.sock")
	m := NewMesh(testLog(t), dir+"/proc")
	defer m.Close()
	// /run/srv is an absolute link to /srv: the root's, not the host's.
	if err := os.MkdirAll(root+"/srv", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/srv", root+"/run/srv"); err != nil {
		t.Fatal(err)
	}
	l := ctrl.XConnectLink{Consumer: "app", ConsumerPid: 1, Provider: "p", ProviderPid: 2, Type: "unix", Role: "any",
		Target: "/run/evil/x.sock", Socket: dir + "/p.sock"}
	if err := m.Reconcile([]ctrl.XConnectLink{l}); err == nil {
		t.Errorf("Reconcile() through a link to a host path succeeded, want an error")
	}
	if _, err := os.Lstat(host + "/x.sock"); err == nil {
		t.Errorf("the socket was made in the host directory through the consumer's link")
	}
	l.Target = "/run/srv/x.sock"
	if err := m.Reconcile([]ctrl.XConnectLink{l}); err != nil {
		t.Fatalf("Reconcile() = %v", err)
	}
	if _, err := os.Lstat(root + "/srv/x.sock"); err != nil {
		t.Errorf("socket not at the link's target inside the root: %v", err)
	}
	l2 := l
	l2.Target = "/run/file"
	if err := m.Reconcile([]ctrl.XConnectLink{l, l2}); err == nil || !errors.Is(err, errNotSocket) {
		t.Errorf("Reconcile() over a regular file = %v, want errNotSocket", err)
	}
	if b, _ := os.ReadFile(root + "/run/file"); string(b) != "keep" {
		t.Errorf("regular file at target = %q, want it kept", b)
	}
}
