package config

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
)

// Masked replaces the value of a secret key in GET /config and /config2.
// ⚠ Upstream shows secrets in clear; we do not.
const Masked = "********"

// Entry is one element of GET /config2.
type Entry struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Modified string `json:"modified"`
}

// Entries returns every key with its effective value and the name of the
// level it comes from, sorted by key: the body of GET /config2. Secret
// values are masked. Dynamic PV_SYSCTL_* keys that were set are included.
func (c *Config) Entries() []Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Entry, 0, len(c.entries))
	for name, e := range c.entries {
		v := e.value()
		if e.key.Secret && v != "" {
			v = Masked
		}
		out = append(out, Entry{Key: name, Value: v, Modified: e.top().String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Legacy returns {legacy alias: value} for every table key that has a
// legacy alias: the body of GET /config. Booleans are true/false; ints,
// durations (seconds), sizes (bytes) and enums (their index in Key.Enum)
// are numbers; strings and percentage sizes are strings. Secret values are
// masked.
func (c *Config) Legacy() map[string]any {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[string]any{}
	for _, k := range keyTable {
		if len(k.Aliases) == 0 {
			continue
		}
		out[k.Aliases[0]] = legacyValue(k, c.entries[k.Name].value())
	}
	return out
}

func legacyValue(k *keyDef, v string) any {
	if k.Secret {
		if v == "" {
			return ""
		}
		return Masked
	}
	switch k.Type {
	case Bool:
		return v == "1"
	case Int, Duration:
		n, _ := strconv.Atoi(v)
		return n
	case Enum:
		for i, e := range k.Enum {
			if e == v {
				return i
			}
		}
		return 0
	case Size:
		if v == "" || strings.HasSuffix(v, "%") {
			return v
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return v
}

// PHConfig returns the contents of pantahub.config: one KEY=value line
// for every key allowed in that file whose value is a number or a
// non-empty string, sorted by key. Values are not masked.
func (c *Config) PHConfig() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var b bytes.Buffer
	for _, key := range Keys() {
		k := key.d
		if !k.Levels.Has(PHConf) {
			continue
		}
		// PV keys the file may carry (updater.commit_delay) are kept only
		// when the file is where they came from.
		if !strings.HasPrefix(k.Name, "PH_") && c.entries[k.Name].top() != PHConf {
			continue
		}
		v := c.entries[k.Name].value()
		if k.Type == String && v == "" {
			continue
		}
		if strings.ContainsAny(v, "\n\x00") {
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", k.Name, v)
	}
	return b.Bytes()
}

// WritePHConfig writes PHConfig to path (pantahub.config or
// unclaimed.config) through a temporary file, fsync and rename, so a crash
// leaves the old or the new file, never half of one. The file is 0600: it
// holds the device secret.
func (c *Config) WritePHConfig(path string) error {
	return atomicfile.Write(path, c.PHConfig(), 0o600)
}
