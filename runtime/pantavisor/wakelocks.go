package pantavisor

import (
	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/xconnect"
)

// extrasAPI implements ctrl.Extras for the daemon.
type extrasAPI struct{ d *Daemon }

// XConnectGraph implements ctrl.Extras: the links between the running
// containers of the loaded revision; 404, as upstream, before a revision
// is loaded.
func (a extrasAPI) XConnectGraph() ([]ctrl.XConnectLink, error) {
	var st *state.State
	var pids map[string]int
	if p := a.d.platforms; p != nil {
		st, pids = p.Running()
	}
	if st == nil {
		return nil, ctrl.Errorf(ctrl.ErrNotFound, "Resource does not exist")
	}
	return xconnect.Graph(st, pids), nil
}

// Wakelocks implements ctrl.Extras. The locks are the scopes the daemon
// knows it holds: boot until the first RUN→WAIT, update while an update
// exists, debug_shell while the console debug shell is open. The kernel
// wakelock itself (/sys/power/wake_lock) is not taken,
// so a mode other than "disabled" reports degraded; autosleep, settling,
// polling and the run window belong to the managed power mode, which is
// not implemented (always false).
func (a extrasAPI) Wakelocks() (ctrl.Wakelocks, error) {
	d := a.d
	w := ctrl.Wakelocks{Mode: d.conf.Get(config.PowerMode)}
	if w.Mode == "" {
		w.Mode = "locks"
	}
	if w.Mode == "disabled" {
		return w, nil
	}
	select {
	case <-d.ready:
	default:
		w.Held.Boot = 1
	}
	if d.updater != nil && d.updater.Updating() {
		w.Held.Update = 1
	}
	if d.debugShellOpen() {
		w.Held.DebugShell = 1
	}
	w.Count = w.Held.Boot + w.Held.Update + w.Held.DebugShell
	w.Degraded = true
	return w, nil
}
