package pantavisor

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/config"
)

// TestSettle: Options.Settle (the initrd's modules still loading) runs
// once, before RUN is done, and again never; and once when INIT fails
// after Prepare.
func TestSettle(t *testing.T) {
	var n atomic.Int32
	in := start(t, newStorage(t), func(o *Options) { o.Settle = func() { n.Add(1) } })
	if got := n.Load(); got != 1 {
		t.Errorf("Settle ran %d times by READY, want 1", got)
	}
	in.stop()
	if got := n.Load(); got != 1 {
		t.Errorf("Settle ran %d times after Run returned, want 1", got)
	}

	n.Store(0)
	notFound := errors.New("storage LABEL=root: storage device not found")
	d, err := New(Options{Cmdline: "pv_rev=0 pv_standalone",
		Env:     []string{"PV_STORAGE_MNTPOINT=" + newStorage(t), "PV_SYSTEM_RUNDIR=" + filepath.Join(t.TempDir(), "run"), "PV_DEBUG_SHELL=0"},
		Prepare: func(context.Context, Mode, func(config.Key) string) error { return notFound },
		Settle:  func() { n.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Run(context.Background()); !errors.Is(err, notFound) {
		t.Errorf("Run = %v, want %v", err, notFound)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("Settle ran %d times after a failed INIT, want 1", got)
	}
}
