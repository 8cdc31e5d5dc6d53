package pantavisor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// conf is the daemon's view of the configuration: the keys the FSM and the
// control socket need, layered default < conf file < cmdline < env <
// metadata < command (spec §8). It is a local adapter until runtime/config
// is wired in; it only knows the keys listed in confKeys.
type conf struct {
	mu     sync.Mutex
	layers map[string]map[int]string // key → level → value
}

type confVal struct {
	value string
	level int
}

// Levels as shown by GET /config2.
const (
	lvlDefault = iota
	lvlPVConf
	lvlPVCmdline
	lvlEnv
	lvlMetadata
	lvlCommand
)

var lvlNames = []string{"default", "pv conf file", "pv cmdline", "env", "metadata", "command"}

type confKey struct {
	name, alias, def string
	typ              byte // 's' string, 'b' bool, 'i' int
}

var confKeys = []confKey{
	{"PV_CACHE_DEVMETADIR", "cache.devmetadir", "/storage/cache/devmeta", 's'},
	{"PV_CACHE_USRMETADIR", "meta.cache.dir", "/storage/cache/meta", 's'},
	{"PV_CONTROL_REMOTE", "control.remote", "1", 'b'},
	{"PV_CONTROL_REMOTE_ALWAYS", "control.remote.always", "0", 'b'},
	{"PV_DEBUG_SHELL", "debug.shell", "1", 'b'},
	{"PV_DEBUG_SSH", "debug.ssh", "1", 'b'},
	{"PV_LOG_DIR", "log.dir", "/storage/logs/", 's'},
	{"PV_LOG_LEVEL", "log.level", "0", 'i'},
	{"PV_STORAGE_GC_KEEP_FACTORY", "updater.keep_factory", "0", 'b'},
	{"PV_STORAGE_GC_RESERVED", "storage.gc.reserved", "5", 'i'},
	{"PV_STORAGE_MNTPOINT", "storage.mntpoint", "/storage", 's'},
	{"PV_SYSTEM_INIT_MODE", "system.init.mode", "embedded", 's'},
	{"PV_SYSTEM_RUNDIR", "system.rundir", "/pv", 's'},
	{"PV_UPDATER_COMMIT_DELAY", "updater.commit.delay", "25", 'i'},
}

func lookupKey(k string) (confKey, bool) {
	for _, c := range confKeys {
		if strings.EqualFold(c.name, k) || c.alias == k {
			return c, true
		}
	}
	return confKey{}, false
}

func newConf() *conf {
	c := &conf{layers: map[string]map[int]string{}}
	for _, k := range confKeys {
		c.layers[k.name] = map[int]string{lvlDefault: k.def}
	}
	return c
}

// top returns the value and level that win for key (lock held).
func (c *conf) top(key string) confVal {
	best := confVal{level: -1}
	for l, v := range c.layers[key] {
		if l > best.level {
			best = confVal{v, l}
		}
	}
	return best
}

// level returns the level that set key.
func (c *conf) level(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.top(key).level
}

// unset removes key's value at lvl, restoring the one below.
func (c *conf) unset(k string, lvl int) {
	key, ok := lookupKey(k)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.layers[key.name], lvl)
}

// loadConf layers the config file, the cmdline pv_ tokens and the env.
func loadConf(file, cmdline string, env []string) (*conf, error) {
	c := newConf()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", file, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimRight(sc.Text(), " \t\r"), "=")
			if ok {
				c.set(k, v, lvlPVConf)
			}
		}
	}
	for _, w := range strings.Fields(cmdline) {
		if k, v, ok := strings.Cut(w, "="); ok && strings.HasPrefix(k, "pv_") {
			c.set(strings.TrimPrefix(k, "pv_"), v, lvlPVCmdline)
		}
	}
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok && (strings.HasPrefix(k, "PV_") || strings.HasPrefix(k, "PH_")) {
			c.set(k, v, lvlEnv)
		}
	}
	return c, nil
}

// set stores v for k at lvl (a higher level still wins). Unknown keys are
// ignored (false).
func (c *conf) set(k, v string, lvl int) bool {
	key, ok := lookupKey(k)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.layers[key.name][lvl] = v
	return true
}

// Get returns the value of key.
func (c *conf) Get(key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.top(key).value
}

// Bool returns key as a boolean (1/true/yes/on).
func (c *conf) Bool(key string) bool {
	switch strings.ToLower(c.Get(key)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// Legacy is GET /config: legacy alias → typed value.
func (c *conf) Legacy() any {
	out := map[string]any{}
	for _, k := range confKeys {
		v := c.Get(k.name)
		switch k.typ {
		case 'b':
			out[k.alias] = c.Bool(k.name)
		case 'i':
			n, err := strconv.Atoi(v)
			if err != nil {
				out[k.alias] = v
			} else {
				out[k.alias] = n
			}
		default:
			out[k.alias] = v
		}
	}
	return out
}

type confEntry struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Modified string `json:"modified"`
}

// Entries is GET /config2.
func (c *conf) Entries() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]confEntry, 0, len(c.layers))
	for k := range c.layers {
		v := c.top(k)
		out = append(out, confEntry{k, v.value, lvlNames[v.level]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// storagePath maps a configured path under /storage onto the storage
// mount point (appengine runs with storage elsewhere).
func (c *conf) storagePath(key string) string {
	v := c.Get(key)
	mnt := strings.TrimRight(c.Get("PV_STORAGE_MNTPOINT"), "/")
	if rest, ok := strings.CutPrefix(v, "/storage/"); ok && mnt != "/storage" {
		return mnt + "/" + rest
	}
	return v
}
