package pantavisor

import "github.com/pantavisor/pantavisor-go/runtime/config"

import "github.com/pantavisor/pantavisor-go/runtime/ctrl"

// Wakelocks is the GET /wakelocks answer (spec §5, upstream's shape).
type Wakelocks struct {
	Mode      string    `json:"mode"`  // PV_POWER_MODE: disabled, locks or managed
	Count     int       `json:"count"` // locks held, all scopes
	Degraded  bool      `json:"degraded"`
	Autosleep bool      `json:"autosleep"`
	Settling  bool      `json:"settling"`
	Polling   bool      `json:"polling"`
	RunWindow bool      `json:"run_window"`
	Held      HeldLocks `json:"held"`
}

// HeldLocks counts the locks held per scope.
type HeldLocks struct {
	Boot        int `json:"boot"`
	Update      int `json:"update"`
	UpdateCheck int `json:"update_check"`
	Devmeta     int `json:"devmeta"`
	Usrmeta     int `json:"usrmeta"`
	Shutdown    int `json:"shutdown"`
	DebugShell  int `json:"debug_shell"`
	Poll        int `json:"poll"`
}

// extrasAPI implements ctrl.Extras for the daemon.
type extrasAPI struct{ d *Daemon }

// XConnectGraph implements ctrl.Extras: the daemon builds no xconnect
// graph, so it is 404 as upstream answers before one is built.
func (a extrasAPI) XConnectGraph() (any, error) {
	return nil, ctrl.Errorf(ctrl.ErrNotFound, "Resource does not exist")
}

// Wakelocks implements ctrl.Extras. The locks are the scopes the daemon
// knows it holds: boot until the first RUN→WAIT, update while an update
// exists, debug_shell while the console debug shell is open. The kernel
// wakelock itself (/sys/power/wake_lock) is not taken,
// so a mode other than "disabled" reports degraded; autosleep, settling,
// polling and the run window belong to the managed power mode, which is
// not implemented (always false).
func (a extrasAPI) Wakelocks() (any, error) {
	d := a.d
	w := Wakelocks{Mode: d.conf.Get(config.PowerMode)}
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
