package appengine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeDaemon stands in for the pantavisor binary: boot N records its
// command line and runs bootN.sh, which plays what the daemon would do to
// the env and exits with the daemon's status.
func fakeDaemon(t *testing.T, dir string, boots ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "pantavisor")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %[1]s/cmdlines\nn=$(wc -l < %[1]s/cmdlines)\n. %[1]s/boot$n.sh\n", dir)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, b := range boots {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("boot%d.sh", i+1)), []byte(b), 0o644)
	}
	return bin
}

func env(dir, vars string) string {
	return fmt.Sprintf("printf '%s\\0' > %s/boot/uboot.txt\n", vars, dir)
}

func cmdlines(t *testing.T, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "cmdlines"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestBootLoopRollback(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
	os.WriteFile(filepath.Join(dir, "boot", "uboot.txt"), []byte("pv_rev=0\x00\x00"), 0o644)
	bin := fakeDaemon(t, dir,
		env(dir, `pv_rev=0\0pv_try=1\0`)+"exit 0", // installs revision 1, reboots
		"kill -9 $$", // the try crashes hard
		env(dir, `pv_rev=0\0pv_try=\0`)+"exit 3", // rolled back: fail clears pv_try, poweroff
	)
	boots, err := Run(context.Background(), Options{Pantavisor: bin, Storage: dir, Delay: -1})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--cmdline pv_rev=0 pv_try=",
		"--cmdline pv_rev=1 pv_try=1",
		"--cmdline pv_rev=0 pv_try=1",
	}
	if got := cmdlines(t, dir); !slices.Equal(got, want) {
		t.Errorf("cmdlines = %q, want %q", got, want)
	}
	if len(boots) != 3 || boots[1].Status != -1 || boots[2].Status != 3 {
		t.Errorf("boots = %+v", boots)
	}
}

func TestBootLoopCommit(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
	os.WriteFile(filepath.Join(dir, "boot", "uboot.txt"), []byte("pv_rev=0\x00\x00"), 0o644)
	bin := fakeDaemon(t, dir,
		env(dir, `pv_rev=0\0pv_try=2\0`)+"exit 0",
		env(dir, `pv_rev=2\0pv_try=\0`)+"exit 0", // commits and reboots
		"exit 3",
	)
	if _, err := Run(context.Background(), Options{Pantavisor: bin, Storage: dir, Delay: -1, Cmdline: "pv_quickboot"}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--cmdline pv_rev=0 pv_try= pv_quickboot",
		"--cmdline pv_rev=2 pv_try=2 pv_quickboot",
		"--cmdline pv_rev=2 pv_try= pv_quickboot",
	}
	if got := cmdlines(t, dir); !slices.Equal(got, want) {
		t.Errorf("cmdlines = %q, want %q", got, want)
	}
}

// A boot loop killed while a try runs (power cut) must still roll back:
// the latch is on storage, not in memory.
func TestBootLoopLatchSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
	os.WriteFile(filepath.Join(dir, "boot", "uboot.txt"), []byte("pv_rev=0\x00pv_try=1\x00\x00"), 0o644)
	c, _, err := Choose(dir)
	if err != nil || c.Boot != "1" {
		t.Fatalf("first boot = %+v, %v; want 1", c, err)
	}
	c, _, err = Choose(dir) // a new boot loop process after the cut
	if err != nil || c.Boot != "0" {
		t.Fatalf("boot after the cut = %+v, %v; want rollback to 0", c, err)
	}
}

func TestBootLoopBroken(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
	bin := fakeDaemon(t, dir, "exit 2")
	_, err := Run(context.Background(), Options{Pantavisor: bin, Storage: dir, Delay: -1})
	if !errors.Is(err, ErrBroken) {
		t.Errorf("Run with exit 2 = %v, want ErrBroken", err)
	}
	if got := cmdlines(t, dir); got[0] != "--cmdline pv_rev=0 pv_try=" {
		t.Errorf("missing env boots %q", got[0])
	}
}

func TestBootLoopCancel(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
	// the daemon answers SIGTERM with the poweroff status, as the real one
	bin := fakeDaemon(t, dir, "trap 'exit 3' TERM\nwhile :; do sleep 0.05; done")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	boots, err := Run(ctx, Options{Pantavisor: bin, Storage: dir, Delay: -1})
	if err != nil || len(boots) != 1 || boots[0].Status != 3 {
		t.Errorf("Run cancelled = %+v, %v", boots, err)
	}
}

// TestBootLoopCancelKills checks that a daemon ignoring SIGTERM is killed
// after StopTimeout instead of hanging the loop.
func TestBootLoopCancelKills(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
	bin := fakeDaemon(t, dir, "trap '' TERM\nwhile :; do sleep 0.05; done")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	type result struct {
		boots []Boot
		err   error
	}
	res := make(chan result, 1)
	go func() {
		boots, err := Run(ctx, Options{Pantavisor: bin, Storage: dir, Delay: -1, StopTimeout: 200 * time.Millisecond})
		res <- result{boots, err}
	}()
	select {
	case r := <-res:
		if !errors.Is(r.err, context.DeadlineExceeded) || len(r.boots) != 1 || r.boots[0].Status != -1 {
			t.Errorf("Run with a daemon ignoring SIGTERM = %+v, %v, want one killed boot (status -1), %v", r.boots, r.err, context.DeadlineExceeded)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run still waiting for a daemon that ignores SIGTERM")
	}
}

// TestBootLoopRetrySameRevision: a try that fails without a reboot has
// its pv_try cleared by the daemon; retrying the same revision later must
// boot it, not roll back at once on a stale pv_trying latch.
func TestBootLoopRetrySameRevision(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
	os.WriteFile(filepath.Join(dir, "boot", "uboot.txt"), []byte("pv_rev=0\x00\x00"), 0o644)
	bin := fakeDaemon(t, dir,
		env(dir, `pv_rev=0\0pv_try=locals/x\0`)+"exit 0", // installs locals/x
		env(dir, `pv_rev=0\0pv_try=\0`)+"exit 0",         // it fails: pv_try cleared, reboot
		env(dir, `pv_rev=0\0pv_try=locals/x\0`)+"exit 0", // the user runs it again
		"exit 3",
	)
	if _, err := Run(context.Background(), Options{Pantavisor: bin, Storage: dir, Delay: -1}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--cmdline pv_rev=0 pv_try=",
		"--cmdline pv_rev=locals/x pv_try=locals/x",
		"--cmdline pv_rev=0 pv_try=",
		"--cmdline pv_rev=locals/x pv_try=locals/x",
	}
	if got := cmdlines(t, dir); !slices.Equal(got, want) {
		t.Errorf("cmdlines = %q, want %q", got, want)
	}
}
