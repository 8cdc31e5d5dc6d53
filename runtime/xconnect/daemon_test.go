package xconnect

import (
	"context"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
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
