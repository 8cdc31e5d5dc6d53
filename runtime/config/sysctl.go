package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SysctlRoot is where sysctls live on a running system.
const SysctlRoot = "/proc/sys"

// Sysctl is one PV_SYSCTL_* setting resolved to its file.
type Sysctl struct {
	Key   string // PV_SYSCTL_KERNEL_CORE_PATTERN
	Path  string // relative to the sysctl root: kernel/core_pattern
	Value string
}

// SysctlPath resolves the part of a PV_SYSCTL_<A_B_C> name after the
// prefix against root: walking left to right, each '_' becomes '/' when
// the path built so far is an existing directory, so KERNEL_CORE_PATTERN
// becomes kernel/core_pattern and NET_IPV4_IP_FORWARD net/ipv4/ip_forward.
func SysctlPath(root, name string) string {
	parts := strings.Split(strings.ToLower(name), "_")
	dir, comp := "", parts[0]
	for _, p := range parts[1:] {
		cand := filepath.Join(dir, comp)
		if fi, err := os.Stat(filepath.Join(root, cand)); err == nil && fi.IsDir() {
			dir, comp = cand, p
			continue
		}
		comp += "_" + p
	}
	return filepath.Join(dir, comp)
}

// Sysctls returns the PV_SYSCTL_* keys with a non-empty effective value,
// resolved against root (SysctlRoot on a device), sorted by key. Keys set
// in the legacy dotted form (sysctl.a.b_c) keep their exact path.
func (c *Config) Sysctls(root string) []Sysctl {
	c.mu.RLock()
	var out []Sysctl
	for name, e := range c.entries {
		if !strings.HasPrefix(name, sysctlPrefix) {
			continue
		}
		v := e.value()
		if v == "" {
			continue
		}
		out = append(out, Sysctl{Key: name, Path: e.path, Value: v})
	}
	c.mu.RUnlock()
	for i := range out {
		if out[i].Path == "" {
			out[i].Path = SysctlPath(root, out[i].Key[len(sysctlPrefix):])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// ApplySysctls writes every Sysctls(root) value to its file under root.
// It tries all of them and returns the failures joined.
func (c *Config) ApplySysctls(root string) error {
	var errs []error
	for _, s := range c.Sysctls(root) {
		p := filepath.Join(root, s.Path)
		if err := writeExisting(p, s.Value); err != nil {
			errs = append(errs, fmt.Errorf("sysctl %s: %w", s.Key, err))
			continue
		}
		c.log.Debug("config: sysctl applied", "key", s.Key, "path", p)
	}
	return errors.Join(errs...)
}

// writeExisting writes to a file that must already exist, as sysctl files
// do; it never creates one.
func writeExisting(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
