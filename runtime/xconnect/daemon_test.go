package xconnect

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"golang.org/x/sys/unix"
)

// Pantavisor signals pv-xconnect whenever a container starts, which may be
// while pv-xconnect is still starting: ReadSignal sent from the moment it
// is forked must not kill it (SIGHUP did, for a restart backoff).
// pv-xconnect here is this test binary running Main, with no pv-ctrl.
func TestReadSignalAtStart(t *testing.T) {
	if os.Getenv("PV_XCONNECT_TEST_MAIN") == "1" {
		Main(context.Background(), []string{"-socket", "/nonexistent/pv-ctrl"}, nil, io.Discard, io.Discard)
		os.Exit(0)
	}
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReadSignalAtStart$")
		cmd.Env = append(os.Environ(), "PV_XCONNECT_TEST_MAIN=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
			syscall.Kill(cmd.Process.Pid, ReadSignal)
			time.Sleep(100 * time.Microsecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("pv-xconnect signalled from its start: %v, want exit 0 at SIGTERM", err)
		}
	}
}

// A link whose provider resource is not there yet (a DRM node whose
// driver loads after both containers started) is tried again within a
// second or so, not at the next Poll. pv-ctrl is a test server here that
// serves one drm link; the provider's node appears 600 ms after
// pv-xconnect started. The test has no DRM device: the major is
// /dev/null's (1), as in TestMeshDRMNode.
func TestMainRetriesFailedLinks(t *testing.T) {
	testenv.NeedRoot(t, "mknod")
	old := drmMajor
	drmMajor = 1
	defer func() { drmMajor = old }()
	dir := t.TempDir()
	l := selfLink("drm", dir)
	l.Role, l.Socket, l.Target = "master", dir+"/card0", dir+"/consumer/dev/dri/card0"
	ctl, err := net.Listen("unix", dir+"/pv-ctrl")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]ctrl.XConnectLink{l})
	})}
	go srv.Serve(ctl)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Main(ctx, []string{"-socket", dir + "/pv-ctrl"}, nil, io.Discard, logWriter{t}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Main() = %v", err)
		}
	}()
	time.Sleep(600 * time.Millisecond)
	if err := unix.Mknod(l.Socket, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	for {
		var st unix.Stat_t
		if err := unix.Lstat(l.Target, &st); err == nil && st.Rdev == unix.Mkdev(1, 3) {
			break
		}
		if time.Since(start) > 2*Poll {
			t.Fatalf("the node was not injected within %s of pv-xconnect's start", 2*Poll)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(start); d > Poll/2 {
		t.Errorf("node injected %s after pv-xconnect started, want well before Poll (%s)", d.Round(time.Millisecond), Poll)
	} else {
		t.Logf("node injected %s after pv-xconnect started (the provider's at 600ms)", d.Round(time.Millisecond))
	}
}
