package pantavisor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/boottime"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/platform"
)

// waitResult runs WaitModules in a goroutine and returns its result
// channel.
func waitResult(c *coldplug, ctx context.Context, names ...string) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.WaitModules(ctx, names...) }()
	return ch
}

func TestColdplugWaitModules(t *testing.T) {
	sys := t.TempDir()
	os.MkdirAll(filepath.Join(sys, "module", "virtio_pci"), 0o755)
	c := newColdplug(sys)
	ctx := context.Background()

	// Loaded before the coldplug (initrd): no wait; names are canonical.
	if err := c.WaitModules(ctx, "virtio-pci"); err != nil {
		t.Fatalf("WaitModules(in kernel) = %v", err)
	}
	// A driver the container needs: it waits for that one only.
	got := waitResult(c, ctx, "virtio_net", "e1000")
	c.loadedModule("bochs") // another driver: still waiting
	c.loadedModule("virtio_net")
	select {
	case err := <-got:
		t.Fatalf("WaitModules returned %v with e1000 still missing", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.loadedModule("e1000")
	if err := <-got; err != nil {
		t.Fatalf("WaitModules = %v", err)
	}
	// Never loaded: the end of the coldplug ends the wait.
	got = waitResult(c, ctx, "absent")
	close(c.done)
	if err := <-got; err != nil {
		t.Fatalf("WaitModules(after coldplug) = %v", err)
	}
	// ctx ends first.
	c2 := newColdplug("")
	cctx, cancel := context.WithCancel(ctx)
	got = waitResult(c2, cctx, "absent")
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitModules(cancelled) = %v", err)
	}
	// No BSP modules: nothing to wait for.
	var none *coldplug
	if err := none.WaitModules(ctx, "x"); err != nil {
		t.Fatalf("nil coldplug: %v", err)
	}
	d := &Daemon{}
	if err := d.WaitDrivers(ctx, "x"); err != nil {
		t.Fatalf("WaitDrivers before RUN = %v", err)
	}
}

// bootPlatforms is a PlatformManager with fixed container statuses.
type bootPlatforms struct {
	PlatformManager
	statuses []string
	rev      string
}

func (b *bootPlatforms) Containers() ([]ctrl.Container, error) {
	var cs []ctrl.Container
	for i, s := range b.statuses {
		cs = append(cs, ctrl.Container{Name: string(rune('a' + i)), Status: s})
	}
	return cs, nil
}

func (b *bootPlatforms) RevisionStatus() string { return b.rev }

func TestBootProgress(t *testing.T) {
	var log bytes.Buffer
	p := &bootPlatforms{statuses: []string{platform.Started.String(), platform.Starting.String()}, rev: platform.Starting.String()}
	d := &Daemon{mode: Embedded, log: slog.New(slog.NewTextHandler(&log, nil)), platforms: p,
		boot: boottime.At(time.Now(), time.Second)}
	d.bootProgress()
	if _, ok := d.boot.Since("containers started"); ok {
		t.Fatal("containers started with one STARTING")
	}
	p.statuses[1] = platform.Ready.String()
	d.bootProgress()
	if _, ok := d.boot.Since("containers started"); !ok {
		t.Fatal("containers started not marked")
	}
	if log.Len() != 0 {
		t.Fatalf("timeline printed before READY: %s", log.String())
	}
	p.rev = platform.Ready.String()
	d.bootProgress()
	d.bootProgress()
	out := log.String()
	if strings.Count(out, "boot:") != 1 || !strings.Contains(out, "containers started") || !strings.Contains(out, "READY") {
		t.Errorf("timeline line (once) = %q", out)
	}
}

// TestSSHDue: the debug ssh server waits for READY (its host key may wait
// for the kernel's random pool), at most sshLateAfter after /init.
func TestSSHDue(t *testing.T) {
	p := &bootPlatforms{statuses: []string{platform.Starting.String()}, rev: platform.Starting.String()}
	d := &Daemon{mode: Embedded, log: slog.New(slog.DiscardHandler), platforms: p, boot: boottime.At(time.Now(), -1)}
	if d.sshDue() {
		t.Fatal("ssh due before READY")
	}
	p.statuses[0], p.rev = platform.Started.String(), platform.Ready.String()
	d.bootProgress()
	if !d.sshDue() {
		t.Fatal("ssh not due at READY")
	}
	late := &Daemon{platforms: p, boot: boottime.At(time.Now().Add(-sshLateAfter-time.Second), -1)}
	if !late.sshDue() {
		t.Fatal("ssh not due after sshLateAfter")
	}
	if !(&Daemon{boot: boottime.At(time.Now(), -1)}).sshDue() {
		t.Fatal("ssh not due without platforms")
	}
}
