package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/appengine"
	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
)

// bootBinary boots the built daemon as the App Engine boot loop does:
// the boot script's choice (and its pv_trying latch) from the storage's
// uboot.txt, then pantavisor with that command line. It waits for the
// revision to be READY and the FSM to wait, and returns the booted
// revision.
func bootBinary(t *testing.T, dir string) (*proc, string) {
	t.Helper()
	storage := filepath.Join(dir, "storage")
	c, try, err := appengine.Choose(storage)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "--config", filepath.Join(dir, "pantavisor.config"),
		"--cmdline", "pv_rev="+c.Boot+" pv_try="+try)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, sock: filepath.Join(dir, "run", "pv-ctrl"), done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		// A killed daemon leaves its metadata bind mounts behind.
		for _, m := range []string{"device-meta", "user-meta"} {
			for syscall.Unmount(filepath.Join(dir, "run", m), syscall.MNT_DETACH) == nil {
			}
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		// device-meta persists across boots: the revision tells this
		// boot's from the last one's.
		if code, body := p.get(t, "/device-meta"); code == 200 && strings.Contains(body, `"pantavisor.status":"READY"`) &&
			strings.Contains(body, `"pantavisor.state":"WAIT"`) && strings.Contains(body, `"pantavisor.revision":"`+c.Boot+`"`) {
			return p, c.Boot
		}
		select {
		case err := <-p.done:
			t.Fatalf("pantavisor booting %s exited: %v", c.Boot, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pantavisor booting %s not ready after 10s", c.Boot)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGCInTryKill9: a device tries locals/try (pv_rev=0 committed,
// pv_try=locals/try), POST /storage/gc runs, and the power is cut
// (kill -9 of the real daemon). The next boot falls back to revision 0,
// which must still be on storage and run (issue 11, defect 4: GC kept
// the running revision as the committed one and deleted 0, leaving a
// device alternating between the try and a missing fallback).
func TestGCInTryKill9(t *testing.T) {
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	for _, rev := range []string{"0", "locals/try", "locals/junk"} {
		p := filepath.Join(storage, "trails", rev, ".pvr")
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "json"), []byte(emptyState), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(storage, "trails", "0", ".pv"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(storage, "trails", "0", ".pv", "done"), nil, 0o644)
	if err := os.MkdirAll(filepath.Join(storage, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := bootloader.OpenUbootFile(filepath.Join(storage, "boot", "uboot.txt"))
	if err := env.Set(bootloader.VarRev, "0"); err != nil {
		t.Fatal(err)
	}
	if err := env.Set(bootloader.VarTry, "locals/try"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "pantavisor.config"), []byte("PV_SYSTEM_INIT_MODE=appengine\nPV_STORAGE_MNTPOINT="+storage+
		"\nPV_SYSTEM_RUNDIR="+filepath.Join(dir, "run")+"\nPV_CONTROL_REMOTE=0\nPV_UPDATER_COMMIT_DELAY=600\n"), 0o644)

	p, rev := bootBinary(t, dir)
	if rev != "locals/try" {
		t.Fatalf("first boot ran %s, want the try", rev)
	}
	if code := p.post(t, "/storage/gc", ""); code != 200 {
		t.Fatalf("POST /storage/gc = %d", code)
	}
	if _, err := os.Stat(filepath.Join(storage, "trails", "locals", "junk")); !os.IsNotExist(err) {
		t.Errorf("trails/locals/junk after GC: %v, want collected", err)
	}
	p.cmd.Process.Kill() // power cut: no shutdown, no commit
	<-p.done
	p.done <- nil
	if _, err := os.Stat(filepath.Join(storage, "trails", "0", ".pvr", "json")); err != nil {
		t.Fatalf("committed revision 0 after GC in a try and a power cut: %v", err)
	}

	p, rev = bootBinary(t, dir)
	if rev != "0" {
		t.Fatalf("boot after the cut try ran %s, want the fallback 0", rev)
	}
	if code, body := p.get(t, "/device-meta"); !strings.Contains(body, `"pantavisor.revision":"0"`) {
		t.Errorf("GET /device-meta after the fallback = %d %s, want revision 0", code, body)
	}
	if code, body := p.get(t, "/steps/0"); code != 200 || body != emptyState {
		t.Errorf("GET /steps/0 after the fallback = %d %s", code, body)
	}
}
