// Package config is pantavisor's layered configuration (spec §8).
//
// Every key lives in one declarative table (keys.go) with its type,
// default, legacy dotted aliases, the levels it may be set at and whether
// it is secret. A value is kept per level; the highest level set wins:
//
//	default < args < pv conf file < ph conf file < policy < oem <
//	pv cmdline < ph cmdline < env < metadata < command
//
// A key set at a level its mask excludes is rejected and logged; the old
// value stays. Removing a level's value (Unset) lets the next one down show
// through, which is how deleting a user-meta override restores the value.
//
// Usage sketch:
//
//	c, err := config.Load(config.Options{
//		ConfigFile: "/etc/pantavisor.config",
//		Cmdline:    string(cmdline),
//		Env:        os.Environ(),
//		Log:        log,
//	})
//	...
//	c.LoadPHConfig("/storage/config/pantahub.config")
//	c.LoadOEM(c.OEMPath("/storage/trails/" + rev))
//	c.Set("PV_LOG_LEVEL", "4", config.Metadata) // user-meta override
//	c.Unset("PV_LOG_LEVEL", config.Metadata)    // user-meta removed
//	level := c.Int("PV_LOG_LEVEL")
//	args := config.CmdlineArgs(string(cmdline)) // pv_rev, pv_try…
package config
