//go:build linux

package ctrl

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// peerEnv tells the test binary to act as a peer process: connect to the
// socket named by the variable when fd 3 says so, pass the connection
// back over fd 3 and exit when told (see TestMain).
const peerEnv = "CTRL_TEST_PEER"

func TestMain(m *testing.M) {
	if path := os.Getenv(peerEnv); path != "" {
		if err := runPeer(path); err != nil {
			os.Stderr.WriteString("peer: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runPeer(path string) error {
	ctl := os.NewFile(3, "ctl")
	b := make([]byte, 1)
	if _, err := ctl.Read(b); err != nil { // "connect"
		return err
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	f, err := c.(*net.UnixConn).File()
	if err != nil {
		return err
	}
	if err := unix.Sendmsg(int(ctl.Fd()), []byte{'c'}, unix.UnixRights(int(f.Fd())), nil, 0); err != nil {
		return err
	}
	_, err = ctl.Read(b) // "exit"
	return err
}

// peerProc is a child process that connects to the socket and hands the
// connection to the test.
type peerProc struct {
	cmd *exec.Cmd
	ctl *os.File
}

func startPeer(t *testing.T, path string) *peerProc {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "peer-ctl")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), peerEnv+"="+path)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	p := &peerProc{cmd: cmd, ctl: mine}
	t.Cleanup(func() { mine.Close(); cmd.Process.Kill(); cmd.Wait() })
	return p
}

// connect makes the peer connect and returns its connection.
func (p *peerProc) connect(t *testing.T) net.Conn {
	t.Helper()
	if _, err := p.ctl.Write([]byte{'c'}); err != nil {
		t.Fatal(err)
	}
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(p.ctl.Fd()), make([]byte, 1), oob, 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("peer sent no connection: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("peer sent no connection: %v", err)
	}
	f := os.NewFile(uintptr(fds[0]), "conn")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exit makes the peer exit and reaps it: its pid is free for reuse.
func (p *peerProc) exit(t *testing.T) {
	t.Helper()
	p.ctl.Write([]byte{'x'})
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("peer: %v", err)
	}
}

// get sends GET path on c and returns the status code.
func get(t *testing.T, c net.Conn, path string) int {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest("GET", "http://localhost"+path, nil)
	if err := req.Write(c); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// fakeCgroup writes <proc>/<pid>/cgroup.
func fakeCgroup(t *testing.T, proc string, pid int, content string) {
	t.Helper()
	dir := filepath.Join(proc, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestIdentityAtAccept: a nobody process connects, hands its connection on
// and exits; its pid then belongs to a mgmt container (the fake /proc
// says so). The connection keeps the identity it had at accept (issue 11,
// defect 3: the caller used to be looked up at the first request).
func TestIdentityAtAccept(t *testing.T) {
	proc := t.TempDir()
	h := New(Options{ProcRoot: proc, Platforms: platforms{"admin": true, "app": false}, BuildInfo: "bi"})
	identified := make(chan Caller, 1)
	h.accepted = func(c Caller, err error) {
		if err != nil {
			t.Errorf("identify at accept: %v", err)
		}
		identified <- c
	}
	_, path := listen(t, h)
	p := startPeer(t, path)
	fakeCgroup(t, proc, p.cmd.Process.Pid, "0::/lxc/app\n")
	c := p.connect(t)
	if got := <-identified; got.Name != "app" || got.Mgmt {
		t.Fatalf("caller at accept = %+v, want app without mgmt", got)
	}
	p.exit(t)
	fakeCgroup(t, proc, p.cmd.Process.Pid, "0::/lxc/admin\n") // the pid, reused
	if got := get(t, c, "/buildinfo"); got != http.StatusForbidden {
		t.Errorf("GET /buildinfo from the handed-on connection = %d, want 403 (identity fixed at accept)", got)
	}
}

// TestPeerGoneBeforeAccept: a peer that exits before its connection is
// accepted cannot be identified (its pid may be anyone's by then).
func TestPeerGoneBeforeAccept(t *testing.T) {
	proc := t.TempDir()
	h := New(Options{ProcRoot: proc, Platforms: platforms{"admin": true, "app": false}, BuildInfo: "bi"})
	ln, err := Listen(filepath.Join(t.TempDir(), "pv-ctrl"))
	if err != nil {
		t.Fatal(err)
	}
	p := startPeer(t, ln.Addr().String())
	fakeCgroup(t, proc, p.cmd.Process.Pid, "0::/lxc/app\n")
	c := p.connect(t) // queued in the backlog, not accepted yet
	p.exit(t)
	fakeCgroup(t, proc, p.cmd.Process.Pid, "0::/lxc/admin\n")
	srv := NewServer(h)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if got := get(t, c, "/buildinfo"); got != http.StatusInternalServerError {
		t.Errorf("GET /buildinfo from a peer gone before accept = %d, want 500 (unknown caller)", got)
	}
}

// TestPeerPidfd pins the peer both ways (SO_PEERPIDFD, and pidfd_open of
// the SO_PEERCRED pid on older kernels): alive while the peer runs, not
// once it is gone; a peer gone before the pidfd_open cannot be pinned.
func TestPeerPidfd(t *testing.T) {
	for _, peerPidfd := range []bool{true, false} {
		ln, err := Listen(filepath.Join(t.TempDir(), "pv-ctrl"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		p := startPeer(t, ln.Addr().String())
		p.connect(t)
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		pe, err := peerOfConn(c, peerPidfd)
		if err != nil {
			t.Fatalf("peerOf (SO_PEERPIDFD %v): %v", peerPidfd, err)
		}
		if pe.pid != p.cmd.Process.Pid || pe.pidfd < 0 || !pe.alive() {
			t.Errorf("peerOf (SO_PEERPIDFD %v) = %+v alive %v, want pid %d pinned and alive", peerPidfd, pe, pe.alive(), p.cmd.Process.Pid)
		}
		p.exit(t)
		if pe.alive() {
			t.Errorf("peer (SO_PEERPIDFD %v) alive after it exited", peerPidfd)
		}
		pe.close()
		if _, err := peerOfConn(c, false); err == nil {
			t.Errorf("pidfd_open of a peer that is gone succeeded")
		}
		c.Close()
	}
}
