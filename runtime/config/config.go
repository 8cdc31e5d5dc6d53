package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors returned by Set, Load and friends; test with errors.Is.
var (
	ErrUnknownKey = errors.New("unknown configuration key")
	ErrNotAllowed = errors.New("key not allowed at this level")
	ErrBadPolicy  = errors.New("bad policy name")
)

// SetError reports a rejected setting; it names the key, the level and the
// reason, and wraps ErrUnknownKey, ErrNotAllowed or ErrBadValue.
type SetError struct {
	Key   string
	Level Level
	Err   error
}

// Error renders "<key> at level \"<level>\": <reason>".
func (e *SetError) Error() string {
	return fmt.Sprintf("%s at level %q: %v", e.Key, e.Level, e.Err)
}

// Unwrap returns the reason, for errors.Is.
func (e *SetError) Unwrap() error { return e.Err }

// entry holds one key's value at every level it was set at.
type entry struct {
	key  *keyDef
	path string // sysctl path hint from the dotted legacy form, "a/b_c"
	set  [numLevels]bool
	val  [numLevels]string
}

// top returns the highest level holding a value.
func (e *entry) top() Level {
	for l := numLevels - 1; l > Default; l-- {
		if e.set[l] {
			return l
		}
	}
	return Default
}

func (e *entry) value() string {
	if l := e.top(); l != Default {
		return e.val[l]
	}
	return e.key.Default
}

// Config is the layered configuration. It is safe for concurrent use.
type Config struct {
	log *slog.Logger

	mu      sync.RWMutex
	entries map[string]*entry // by canonical key name
	cmdline string            // kept for the ph_ words applied with pantahub.config
	warned  map[string]bool   // keys not implemented whose warning was logged
}

// Options tell Load where the configuration comes from.
type Options struct {
	// ConfigFile is pantavisor.config (usually /etc/pantavisor.config);
	// "" skips it. A missing file is an error.
	ConfigFile string
	// PHConfigFile is pantahub.config; "" skips it (it is normally loaded
	// later with LoadPHConfig, once storage is mounted). A missing file is
	// not an error.
	PHConfigFile string
	// Cmdline is the kernel command line (contents of /proc/cmdline or
	// --cmdline).
	Cmdline string
	// Env is the process environment (os.Environ()).
	Env []string
	// EtcDir, when set, replaces PV_SYSTEM_ETCPANTAVISORDIR as the
	// directory holding policies/<PV_POLICY>.config.
	EtcDir string
	// Args are settings from the program's own arguments (args level).
	Args map[string]string
	Log  *slog.Logger
}

// New returns a configuration holding only the defaults.
func New(log *slog.Logger) *Config {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Config{log: log, entries: map[string]*entry{}, warned: map[string]bool{}}
	for _, k := range keyTable {
		c.entries[k.Name] = &entry{key: k}
	}
	return c
}

// Load builds the configuration in the order of spec §8: defaults, args,
// the pantavisor.config file, the policy file, the pv_/ph_ command line
// words, the PV_*/PH_* environment and, when given, pantahub.config.
// Rejected and unknown keys are logged with their level and reason and
// never applied. Errors are returned only for files that cannot be read
// and for a bad or missing policy.
func Load(o Options) (*Config, error) {
	c := New(o.Log)
	c.cmdline = o.Cmdline

	names := make([]string, 0, len(o.Args))
	for k := range o.Args {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		c.apply(k, o.Args[k], Args, "args")
	}
	if o.ConfigFile != "" {
		if err := c.LoadFile(o.ConfigFile, PVConf); err != nil {
			return nil, err
		}
	}
	pairs := cmdlineConfig(o.Cmdline)
	for _, p := range pairs {
		if p.level == PVCmdline {
			c.apply(p.name, p.value, p.level, "cmdline")
		}
	}
	c.applyEnv(o.Env)
	if err := c.loadPolicy(o.EtcDir); err != nil {
		return nil, err
	}
	for _, p := range pairs {
		if p.level == PHCmdline {
			c.apply(p.name, p.value, p.level, "cmdline")
		}
	}
	if o.PHConfigFile != "" {
		if err := c.LoadPHConfig(o.PHConfigFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return c, nil
}

// applyEnv sets the PV_*/PH_* variables that name keys. Lower-case words the
// kernel forwards from its command line (pv_rev=…) are not configuration.
func (c *Config) applyEnv(env []string) {
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !(strings.HasPrefix(name, "PV_") || strings.HasPrefix(name, "PH_")) {
			continue
		}
		if !IsKey(name) {
			c.log.Debug("config: ignoring unknown environment variable", "key", name, "level", Env.String())
			continue
		}
		c.apply(name, value, Env, "env")
	}
}

// loadPolicy reads <etc>/policies/<PV_POLICY>.config when PV_POLICY is set.
func (c *Config) loadPolicy(etcDir string) error {
	name := c.Get(PolicyName)
	if name == "" {
		return nil
	}
	if strings.Contains(name, "/") || name == "." || name == ".." {
		return fmt.Errorf("%w: %q must not contain '/'", ErrBadPolicy, name)
	}
	if etcDir == "" {
		etcDir = c.Get(SystemEtcPantavisorDir)
	}
	return c.LoadFile(filepath.Join(etcDir, "policies", name+".config"), Policy)
}

// LoadFile applies a configuration file at the given level. Lines that do
// not parse, unknown keys and keys not allowed at the level are logged and
// skipped; only a file that cannot be read is an error.
func (c *Config) LoadFile(path string, lvl Level) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: load %s file: %w", lvl, err)
	}
	defer f.Close()
	pairs, errs := ParseFile(f)
	for _, e := range errs {
		c.log.Warn("config: skipping line", "file", path, "level", lvl.String(), "reason", e.Error())
	}
	for _, p := range pairs {
		c.apply(p.Key, p.Value, lvl, path+":"+strconv.Itoa(p.Line))
	}
	return nil
}

// LoadPHConfig replaces the ph conf file level with pantahub.config (the
// ph_ command line words keep outranking it). A missing file returns an
// error wrapping fs.ErrNotExist.
func (c *Config) LoadPHConfig(path string) error {
	c.clearLevel(PHConf)
	return c.LoadFile(path, PHConf)
}

// OEMPath returns trailDir/<PV_OEM_NAME>/<PV_POLICY|default>.config, or ""
// when PV_OEM_NAME is unset. trailDir is the revision's trail directory.
func (c *Config) OEMPath(trailDir string) string {
	oemName := c.Get(OEMName)
	if oemName == "" || strings.Contains(oemName, "/") || oemName == ".." {
		return ""
	}
	p := c.Get(PolicyName)
	if p == "" {
		p = "default"
	}
	return filepath.Join(trailDir, oemName, p+".config")
}

// LoadOEM replaces the OEM level with the file at path (see OEMPath). The
// previous revision's OEM values are dropped first, even when the file is
// missing; a missing file returns an error wrapping fs.ErrNotExist.
func (c *Config) LoadOEM(path string) error {
	c.clearLevel(OEM)
	if path == "" {
		return nil
	}
	return c.LoadFile(path, OEM)
}

func (c *Config) clearLevel(lvl Level) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		e.set[lvl], e.val[lvl] = false, ""
	}
}

// apply is Set that logs instead of returning the rejection.
func (c *Config) apply(name, value string, lvl Level, src string) {
	if err := c.Set(name, value, lvl); err != nil {
		if errors.Is(err, ErrUnknownKey) {
			c.log.Warn("config: unknown key", "key", name, "level", lvl.String(), "source", src)
			return
		}
		c.log.Warn("config: key rejected", "key", name, "level", lvl.String(), "source", src, "reason", err.Error())
	}
}

// Set sets a key (canonical name, case-insensitive, or legacy alias,
// case-sensitive) at a level. It fails with ErrUnknownKey, ErrNotAllowed
// (the key's mask excludes the level) or ErrBadValue, wrapped in a
// *SetError; the previous value is then kept. Setting a key this build
// does not implement (Key.Implemented) to a value other than its default
// logs "config: PV_X is not implemented in this build; ignored", once per
// key for the life of c.
func (c *Config) Set(name, value string, lvl Level) error {
	k, path, ok := resolve(name)
	if !ok {
		return &SetError{Key: name, Level: lvl, Err: ErrUnknownKey}
	}
	if lvl <= Default || lvl >= numLevels {
		return &SetError{Key: k.Name, Level: lvl, Err: ErrNotAllowed}
	}
	if !k.Levels.Has(lvl) {
		return &SetError{Key: k.Name, Level: lvl, Err: fmt.Errorf("%w (allowed: %s)", ErrNotAllowed, k.Levels)}
	}
	v, err := normalize(k, value)
	if err != nil {
		return &SetError{Key: k.Name, Level: lvl, Err: err}
	}
	c.mu.Lock()
	e := c.entries[k.Name]
	if e == nil {
		e = &entry{key: k}
		c.entries[k.Name] = e
	}
	if path != "" {
		e.path = path
	}
	e.set[lvl], e.val[lvl] = true, v
	warn := k.Todo != "" && v != k.Default && !c.warned[k.Name]
	if warn {
		c.warned[k.Name] = true
	}
	c.mu.Unlock()
	// Once per key, however often and at whatever level it is set; the
	// value is not logged, it may be a secret.
	if warn {
		c.log.Warn("config: "+k.Name+" is not implemented in this build; ignored", "level", lvl.String())
	}
	return nil
}

// Unset removes the value a level holds for a key, so the next level down
// shows through again (removing a user-meta override restores the value
// from before it). Unknown keys and unset levels are ignored.
func (c *Config) Unset(name string, lvl Level) {
	k, _, ok := resolve(name)
	if !ok || lvl < 0 || lvl >= numLevels {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[k.Name]; e != nil {
		e.set[lvl], e.val[lvl] = false, ""
	}
}

// lookup returns the entry of a name, or nil.
func (c *Config) lookup(name string) *entry {
	k, _, ok := resolve(name)
	if !ok {
		return nil
	}
	return c.entries[k.Name]
}

// Get returns the effective value of a key in canonical form (booleans
// "1"/"0", durations in seconds); "" for the zero Key.
func (c *Config) Get(k Key) string {
	if k.d == nil {
		return ""
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[k.d.Name].value()
}

// Source returns the level the effective value of a key comes from.
func (c *Config) Source(k Key) Level {
	if k.d == nil {
		return Default
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[k.d.Name].top()
}

// Int returns an integer key (durations in seconds); 0 if unset or not a
// number.
func (c *Config) Int(k Key) int {
	n, _ := strconv.Atoi(c.Get(k))
	return n
}

// Bool returns a boolean key.
func (c *Config) Bool(k Key) bool {
	b, _ := ParseBool(c.Get(k))
	return b
}

// Duration returns a duration key (or an integer key taken as seconds).
func (c *Config) Duration(k Key) time.Duration {
	return time.Duration(c.Int(k)) * time.Second
}

// Size returns a size key: bytes, or a percentage when percent is true.
func (c *Config) Size(k Key) (n int64, percent bool) {
	v := c.Get(k)
	if v == "" {
		return 0, false
	}
	n, percent, _ = ParseSize(v)
	return n, percent
}

// ApplyUserMeta applies one user-meta change at the metadata level: a
// key that names a configuration key (canonical name or legacy alias, e.g.
// "log.level" or "pantahub.log.push") overrides it, and its deletion
// restores the value from before. applied is false for user-meta keys that
// are not configuration keys; err reports a rejected override (a key that
// is not run-time modifiable, or a bad value), which leaves the
// configuration unchanged and should be logged by the caller.
func (c *Config) ApplyUserMeta(key string, value []byte, deleted bool) (applied bool, err error) {
	if !IsKey(key) {
		return false, nil
	}
	if deleted {
		c.Unset(key, Metadata)
		return true, nil
	}
	if err := c.Set(key, strings.TrimRight(string(value), "\r\n"), Metadata); err != nil {
		return false, err
	}
	return true, nil
}
