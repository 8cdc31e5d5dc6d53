package pantavisor

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/hook"
)

// HooksDir is where the system hooks live below PV_SYSTEM_LIBDIR.
const HooksDir = "pantavisor/pv/hooks/system.d"

// newHooks makes the runner of the system hooks (spec §12) in
// <PV_SYSTEM_LIBDIR>/pantavisor/pv/hooks/system.d. The updater passes it
// to the boot loader, which runs the install and boot-done points; the
// daemon runs system-start and system-done itself.
func (d *Daemon) newHooks() *hook.Runner {
	return hook.New(hook.Options{Dir: filepath.Join(d.conf.Get(config.SystemLibDir), HooksDir), Log: d.log})
}

// hookEnv is the hook environment the daemon knows of: the running and
// tried revisions and the progress status of the revision that matters
// (the try when there is one).
func (d *Daemon) hookEnv() hook.Env {
	d.mu.Lock()
	rev, try := d.rev, d.try
	d.mu.Unlock()
	e := hook.Env{Rev: rev, Try: try, TryBoot: try != "" && try == rev,
		ObjStorage:    filepath.Join(d.store.Root(), "objects"),
		TrailsStorage: filepath.Join(d.store.Root(), "trails")}
	of := rev
	if try != "" {
		of = try
	}
	if p, err := d.store.Progress(of); err == nil {
		e.Status = string(p.Status)
	}
	return e
}

// systemStart runs the system-start hooks, the last step of INIT; their
// failure fails INIT as upstream's.
func (d *Daemon) systemStart(ctx context.Context) error {
	if err := d.hooks.Run(ctx, hook.SystemStart, d.hookEnv()); err != nil {
		return fmt.Errorf("hooks: %w", err)
	}
	return nil
}

// systemDone runs the system-done hooks once per running revision, when
// its status first reaches READY; a failure is logged only.
func (d *Daemon) systemDone(ctx context.Context) {
	rev := d.Revision()
	if d.hooks == nil || d.mode == Standalone || d.doneHooked == rev || d.revisionStatus() != "READY" {
		return
	}
	d.doneHooked = rev
	if err := d.hooks.Run(ctx, hook.SystemDone, d.hookEnv()); err != nil {
		d.log.Warn("hook failed", "op", hook.SystemDone, "err", err)
	}
}
