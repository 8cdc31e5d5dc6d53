package hook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
)

func writeHook(t *testing.T, dir, name, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestRunOrderAndEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	rec := `echo "$(basename $0) $PV_OP $PV_REV $PV_TRY $PV_TRYBOOT $PV_OBJ_STORAGE $PV_TRAILS_STORAGE $PV_STATUS" >>` + out
	writeHook(t, dir, "20-b", rec, 0o755)
	writeHook(t, dir, "10-a", rec, 0o755)
	writeHook(t, dir, "30-not-exec", rec, 0o644)
	if err := os.Mkdir(filepath.Join(dir, "40-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := New(Options{Dir: dir, BaseEnv: []string{"PATH=" + os.Getenv("PATH")}})
	env := Env{Rev: "1", Try: "2", TryBoot: true, ObjStorage: "/s/objects", TrailsStorage: "/s/trails", Status: "INPROGRESS"}
	if err := r.Run(context.Background(), SystemInstallUpdate, env); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	want := "10-a system-install-update 1 2 1 /s/objects /s/trails INPROGRESS\n" +
		"20-b system-install-update 1 2 1 /s/objects /s/trails INPROGRESS\n"
	if string(b) != want {
		t.Errorf("hooks ran:\n%s\nwant\n%s", b, want)
	}
}

func TestFailures(t *testing.T) {
	dir := t.TempDir()
	writeHook(t, dir, "a", `[ "$PV_OP" = system-start ] && { echo broken; exit 3; }; exit 0`, 0o755)
	writeHook(t, dir, "b", `[ "$PV_OP" = system-boot-done ] && exit 1; [ "$PV_OP" = system-done ] && sleep 5; exit 0`, 0o755)
	r := New(Options{Dir: dir, Timeout: 200 * time.Millisecond, BaseEnv: []string{"PATH=" + os.Getenv("PATH")}})
	err := r.Run(context.Background(), SystemStart, Env{})
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "broken") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Run(system-start) = %v, want ErrFailed with output and status", err)
	}
	start := time.Now()
	err = r.Run(context.Background(), SystemDone, Env{})
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("Run(system-done) = %v, want timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timed-out hook took %v", d)
	}
	var h bootloader.Hooks = r.Hooks(nil)
	tests := []struct {
		op      string
		wantErr bool
	}{
		{SystemStart, true},
		{SystemBootDone, false}, // logged only
		{SystemInstallUpdate, false},
	}
	for _, tt := range tests {
		if err := h(tt.op); (err != nil) != tt.wantErr {
			t.Errorf("Hooks(%s) = %v, want error %v", tt.op, err, tt.wantErr)
		}
	}
}

func TestMissingDir(t *testing.T) {
	r := New(Options{Dir: filepath.Join(t.TempDir(), "none")})
	if err := r.Run(context.Background(), SystemStart, Env{}); err != nil {
		t.Errorf("Run without hooks dir = %v, want nil", err)
	}
}

func TestFatal(t *testing.T) {
	for op, want := range map[string]bool{SystemStart: true, SystemInstallUpdate: true,
		SystemBeforeInstallUpdate: true, SystemAfterInstallUpdate: true, SystemBootDone: false, SystemDone: false} {
		if got := Fatal(op); got != want {
			t.Errorf("Fatal(%s) = %v, want %v", op, got, want)
		}
	}
}

// TestFailureHidesExitCode: a failed hook's error carries no ExitCode
// method, which the multi-call main would take for pantavisor's own exit
// status (and then print nothing).
func TestFailureHidesExitCode(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "10-fail"), []byte("#!/bin/sh\necho nope\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := New(Options{Dir: dir}).Run(context.Background(), SystemStart, Env{})
	var coded interface{ ExitCode() int }
	if !errors.Is(err, ErrFailed) || errors.As(err, &coded) || !strings.Contains(err.Error(), "exit status 7: nope") {
		t.Errorf("Run = %v, want ErrFailed with the status and output and no ExitCode in the chain", err)
	}
}
