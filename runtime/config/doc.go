// Package config is pantavisor's layered configuration (spec §8).
//
// Every key lives in one declarative table (keys.go) with its type,
// default, legacy dotted aliases, the levels it may be set at, whether it
// is secret and whether this build implements it (docs/config-keys.md).
// Code names a key by its exported Key (LogLevel for PV_LOG_LEVEL), so a
// misspelt key does not compile; names from files, the command line, the
// environment and user metadata go through the table (Set, Lookup).
// A value is kept per level; the highest level set wins:
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
//	c.Set("log.level", "4", config.Metadata) // user-meta override, by name
//	c.Unset("log.level", config.Metadata)    // user-meta removed
//	level := c.Int(config.LogLevel)
//	args := config.CmdlineArgs(string(cmdline)) // pv_rev, pv_try…
package config
