package config

// get returns the effective value of a key named as in the program's
// input (canonical name, legacy alias or PV_SYSCTL_*), or "" for an
// unknown name: table tests name their keys by string.
func (c *Config) get(name string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.lookup(name); e != nil {
		return e.value()
	}
	return ""
}

// source is Source by name.
func (c *Config) source(name string) Level {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.lookup(name); e != nil {
		return e.top()
	}
	return Default
}
