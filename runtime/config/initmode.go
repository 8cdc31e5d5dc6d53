package config

// Mode is the init mode of pantavisor (PV_SYSTEM_INIT_MODE).
type Mode string

// The init modes.
const (
	Embedded   Mode = "embedded"   // PID 1 of a device
	Standalone Mode = "standalone" // debug shell and ssh only
	AppEngine  Mode = "appengine"  // a daemon inside another system
)

// InitMode returns the init mode: PV_SYSTEM_INIT_MODE from c (embedded when
// c is nil), overridden by the argument words pv_embedded, pv_standalone
// and pv_appengine (the last one wins). debug reports the pv_debug word.
func InitMode(c *Config, args []string) (mode Mode, debug bool) {
	mode = Embedded
	if c != nil {
		switch m := Mode(c.Get(SystemInitMode)); m {
		case Embedded, Standalone, AppEngine:
			mode = m
		}
	}
	for _, a := range args {
		switch a {
		case "pv_embedded":
			mode = Embedded
		case "pv_standalone":
			mode = Standalone
		case "pv_appengine":
			mode = AppEngine
		case "pv_debug":
			debug = true
		}
	}
	return mode, debug
}
