package config

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// sample returns a valid value of k's type that differs from its default.
func sample(k *keyDef) string {
	switch k.Type {
	case Bool:
		if k.Default == "1" {
			return "0"
		}
		return "1"
	case Int, Duration, Size:
		if k.Default == "7" {
			return "8"
		}
		return "7"
	case Enum:
		for _, e := range k.Enum {
			if e != k.Default {
				return e
			}
		}
	}
	return "sample-value"
}

func TestKeyTable(t *testing.T) {
	seenAlias := map[string]string{}
	for _, key := range Keys() {
		k := key.d
		if k.Name != strings.ToUpper(k.Name) || !(strings.HasPrefix(k.Name, "PV_") || strings.HasPrefix(k.Name, "PH_")) {
			t.Errorf("key %q: not an upper-case PV_/PH_ name", k.Name)
		}
		if got, err := normalize(k, k.Default); err != nil || got != k.Default {
			t.Errorf("key %s: default %q normalizes to %q, %v", k.Name, k.Default, got, err)
		}
		if k.Type == Enum && len(k.Enum) == 0 {
			t.Errorf("key %s: enum without values", k.Name)
		}
		if !k.Levels.Has(Default) || !k.Levels.Has(Args) {
			t.Errorf("key %s: mask %s lacks default/args", k.Name, k.Levels)
		}
		for _, a := range k.Aliases {
			if prev, dup := seenAlias[a]; dup {
				t.Errorf("alias %q used by %s and %s", a, prev, k.Name)
			}
			seenAlias[a] = k.Name
		}
	}
	// Every key of the docs' reference table and spec §8 exists.
	for _, name := range strings.Fields(`PH_CREDS_HOST PH_CREDS_ID PH_CREDS_PORT PH_CREDS_PROXY_HOST
		PH_CREDS_PROXY_NOPROXYCONNECT PH_CREDS_PROXY_PORT PH_CREDS_PRN PH_CREDS_SECRET PH_CREDS_TYPE
		PH_FACTORY_AUTOTOK PH_LIBEVENT_HTTP_RETRIES PH_LIBEVENT_HTTP_TIMEOUT PH_METADATA_DEVMETA_INTERVAL
		PH_METADATA_USRMETA_INTERVAL PH_ONLINE_REQUEST_THRESHOLD PH_UPDATER_INTERVAL PH_UPDATER_NETWORK_TIMEOUT
		PH_UPDATER_TRANSFER_MAX_COUNT PV_BOOTLOADER_FITCONFIG PV_BOOTLOADER_MTD_ENV PV_BOOTLOADER_MTD_ONLY
		PV_BOOTLOADER_TYPE PV_BOOTLOADER_UBOOTAB_A_NAME PV_BOOTLOADER_UBOOTAB_B_NAME PV_BOOTLOADER_UBOOTAB_ENV_BAK_NAME
		PV_BOOTLOADER_UBOOTAB_ENV_NAME PV_BOOTLOADER_UBOOTAB_ENV_OFFSET PV_BOOTLOADER_UBOOTAB_ENV_SIZE
		PV_CACHE_DEVMETADIR PV_CACHE_USRMETADIR PV_CONTROL_REMOTE PV_CONTROL_REMOTE_ALWAYS PV_DEBUG_SHELL
		PV_DEBUG_SHELL_AUTOLOGIN PV_DEBUG_SHELL_TIMEOUT PV_DEBUG_SSH PV_DEBUG_SSH_AUTHORIZED_KEYS PV_DISK_EXPORTSDIR
		PV_DISK_VOLDIR PV_DISK_WRITABLEDIR PV_DROPBEAR_CACHE_DIR PV_LIBEVENT_DEBUG_MODE PV_LIBTHHTTP_CERTSDIR
		PV_LIBTHHTTP_LOG_LEVEL PV_LOG_BUF_NITEMS PV_LOG_CAPTURE PV_LOG_CAPTURE_DMESG PV_LOG_DIR PV_LOG_DIR_MAXSIZE
		PV_LOG_FILETREE_TIMESTAMP_FORMAT PV_LOG_HYSTERESIS_FACTOR PV_LOG_LEVEL PV_LOG_LOGGERS PV_LOG_PUSH
		PV_LOG_ROTATE_FACTOR PV_LOG_SERVER_OUTPUTS PV_LOG_SINGLEFILE_TIMESTAMP_FORMAT PV_LOG_STDOUT_TIMESTAMP_FORMAT
		PV_LXC_LOG_LEVEL PV_NET_BRADDRESS4 PV_NET_BRDEV PV_NET_BRMASK4 PV_OEM_NAME PV_POLICY PV_REMOUNT_POLICY
		PV_REVISION_RETRIES PV_SECUREBOOT_CHECKSUM PV_SECUREBOOT_HANDLERS PV_SECUREBOOT_MODE
		PV_SECUREBOOT_OEM_TRUSTSTORE PV_SECUREBOOT_TRUSTSTORE PV_STORAGE_DEVICE PV_STORAGE_FSTYPE
		PV_STORAGE_GC_KEEP_FACTORY PV_STORAGE_GC_RESERVED PV_STORAGE_GC_THRESHOLD PV_STORAGE_GC_THRESHOLD_DEFERTIME
		PV_STORAGE_LOGTEMPSIZE PV_STORAGE_MNTPOINT PV_STORAGE_MNTTYPE PV_STORAGE_PHCONFIG_VOL PV_STORAGE_WAIT
		PV_SYSCTL_KERNEL_CORE_PATTERN PV_SYSTEM_APPARMOR_PROFILES PV_SYSTEM_CONFDIR PV_SYSTEM_DRIVERS_LOAD_EARLY_AUTO
		PV_SYSTEM_ETCDIR PV_SYSTEM_ETCPANTAVISORDIR PV_SYSTEM_INIT_MODE PV_SYSTEM_LIBDIR PV_SYSTEM_MEDIADIR
		PV_SYSTEM_MOUNT_SECURITYFS PV_SYSTEM_RUNDIR PV_SYSTEM_USRDIR PV_UPDATER_COMMIT_DELAY PV_UPDATER_GOALS_TIMEOUT
		PV_UPDATER_USE_TMP_OBJECTS PV_VOLMOUNT_DM_EXTRA_ARGS PV_WDT_MODE PV_WDT_TIMEOUT PV_POWER_MODE
		PV_LOOP_INDEX_BASE PV_STORAGE_FIRMWARE_VOL PV_LOG_MAXSIZE`) {
		if _, ok := Lookup(name); !ok {
			t.Errorf("Lookup(%q) missing", name)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := New(nil)
	for _, tc := range []struct{ key, want string }{
		{"PV_BOOTLOADER_TYPE", "uboot"},
		{"PV_CONTROL_REMOTE", "1"},
		{"PV_SECUREBOOT_MODE", "lenient"},
		{"PV_SECUREBOOT_TRUSTSTORE", "ca-certificates"},
		{"PV_SECUREBOOT_OEM_TRUSTSTORE", "ca-oem-certificates"},
		{"PV_UPDATER_COMMIT_DELAY", "25"},
		{"PV_UPDATER_GOALS_TIMEOUT", "120"},
		{"PH_UPDATER_NETWORK_TIMEOUT", "120"},
		{"PH_UPDATER_INTERVAL", "60"},
		{"PV_REVISION_RETRIES", "10"},
		{"PV_STORAGE_GC_RESERVED", "5"},
		{"PV_STORAGE_GC_THRESHOLD", "0"},
		{"PV_STORAGE_GC_THRESHOLD_DEFERTIME", "600"},
		{"PV_LOG_LEVEL", "0"},
		{"PV_LOG_DIR", "/storage/logs/"},
		{"PV_CACHE_USRMETADIR", "/storage/cache/meta"},
		{"PV_CACHE_DEVMETADIR", "/storage/cache/devmeta"},
		{"PV_SYSTEM_RUNDIR", "/pv"},
		{"PV_SYSTEM_CONFDIR", "/configs"},
		{"PV_DISK_VOLDIR", "/volumes"},
		{"PV_WDT_MODE", "shutdown"},
		{"PV_WDT_TIMEOUT", "15"},
		{"PV_POWER_MODE", "locks"},
		{"PV_LOOP_INDEX_BASE", "-1"},
		{"pv_log_level", "0"},
		{"log.level", "0"},
		{"LOG.LEVEL", ""}, // aliases are case-sensitive
		{"PV_NOPE", ""},
	} {
		if got := c.get(tc.key); got != tc.want {
			t.Errorf("Get(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
	if got, want := c.Duration(UpdaterCommitDelay), 25*time.Second; got != want {
		t.Errorf("Duration(PV_UPDATER_COMMIT_DELAY) = %v, want %v", got, want)
	}
	if got, want := c.Int(LoopIndexBase), -1; got != want {
		t.Errorf("Int(PV_LOOP_INDEX_BASE) = %v, want %v", got, want)
	}
	if !c.Bool(ControlRemote) {
		t.Errorf("Bool(PV_CONTROL_REMOTE) = false, want true")
	}
}

// TestLevelMasks sets every key at every level: allowed levels take the
// value, the others are rejected with ErrNotAllowed and the old value stays.
func TestLevelMasks(t *testing.T) {
	for _, key := range Keys() {
		k := key.d
		for lvl := Args; lvl < numLevels; lvl++ {
			c := New(nil)
			v := sample(k)
			err := c.Set(k.Name, v, lvl)
			want, _ := normalize(k, v)
			if k.Levels.Has(lvl) {
				if err != nil {
					t.Errorf("Set(%s, %q, %s) = %v, want nil", k.Name, v, lvl, err)
				} else if got := c.Get(key); got != want {
					t.Errorf("after Set(%s, %q, %s): Get = %q, want %q", k.Name, v, lvl, got, want)
				}
				continue
			}
			if !errors.Is(err, ErrNotAllowed) {
				t.Errorf("Set(%s, %q, %s) = %v, want ErrNotAllowed", k.Name, v, lvl, err)
			}
			if got := c.Get(key); got != k.Default {
				t.Errorf("after rejected Set(%s, %s): Get = %q, want default %q", k.Name, lvl, got, k.Default)
			}
			if got := c.Source(key); got != Default {
				t.Errorf("after rejected Set(%s, %s): Source = %s, want default", k.Name, lvl, got)
			}
		}
	}
}

func TestLevelRules(t *testing.T) {
	for _, tc := range []struct {
		key string
		lvl Level
		ok  bool
	}{
		{"PV_LOG_LEVEL", PVConf, true},
		{"PV_LOG_LEVEL", PHConf, false},
		{"PV_LOG_LEVEL", Metadata, true},
		{"PV_LOG_LEVEL", PHCmdline, false},
		{"PH_CREDS_HOST", PVConf, false},
		{"PH_CREDS_HOST", PHConf, true},
		{"PH_CREDS_HOST", PVCmdline, false},
		{"PH_CREDS_HOST", PHCmdline, true},
		{"PH_CREDS_HOST", Metadata, false},
		{"PV_POLICY", Policy, false},
		{"PV_POLICY", OEM, false},
		{"PV_POLICY", Env, true},
		{"PV_REMOUNT_POLICY", PVConf, false},
		{"PV_REMOUNT_POLICY", Env, true},
		{"PV_SECUREBOOT_MODE", OEM, false},
		{"PV_SECUREBOOT_MODE", Policy, true},
		{"PV_SECUREBOOT_MODE", Metadata, false},
		{"PV_DEBUG_SSH", Command, true},
		{"PV_DEBUG_SSH", Metadata, true},
		{"PV_DEBUG_SHELL", Command, false},
		{"PV_SYSTEM_RUNDIR", OEM, false},
		{"PV_SYSCTL_VM_SWAPPINESS", OEM, true},
		{"PV_SYSCTL_VM_SWAPPINESS", Metadata, false},
		{"sysctl.vm.swappiness", PVConf, true},
	} {
		v := "1"
		if k, ok := Lookup(tc.key); ok {
			v = sample(k.d)
		}
		err := New(nil).Set(tc.key, v, tc.lvl)
		if (err == nil) != tc.ok {
			t.Errorf("Set(%s, %q, %s) = %v, want ok=%v", tc.key, v, tc.lvl, err, tc.ok)
		}
	}
	c := New(nil)
	if err := c.Set("PV_NOPE", "1", PVConf); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Set(PV_NOPE) = %v, want ErrUnknownKey", err)
	}
	if err := c.Set("PV_LOG_LEVEL", "x", PVConf); !errors.Is(err, ErrBadValue) {
		t.Errorf("Set(PV_LOG_LEVEL, x) = %v, want ErrBadValue", err)
	}
	if err := c.Set("PV_LOG_LEVEL", "1", Default); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("Set(PV_LOG_LEVEL, 1, Default) = %v, want ErrNotAllowed", err)
	}
	var se *SetError
	if err := c.Set("PV_LOG_LEVEL", "1", PHConf); !errors.As(err, &se) || se.Key != "PV_LOG_LEVEL" || se.Level != PHConf {
		t.Errorf("Set(PV_LOG_LEVEL, PHConf) = %#v, want *SetError naming key and level", err)
	}
}

func TestPrecedence(t *testing.T) {
	levels := []Level{Args, PVConf, Policy, OEM, PVCmdline, Env, Metadata, Command}
	// Ascending and descending insertion orders must give the same result.
	for _, order := range [][]Level{levels, reverse(levels)} {
		c := New(nil)
		for _, l := range order {
			if err := c.Set("PV_DEBUG_SSH", map[bool]string{true: "1", false: "0"}[l%2 == 0], l); err != nil {
				t.Fatal(err)
			}
			if err := c.Set("PV_LOG_LEVEL", itoa(int(l)), l); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := c.Int(LogLevel), int(Command); got != want {
			t.Errorf("order %v: Int(PV_LOG_LEVEL) = %d, want %d", order, got, want)
		}
		// Peel levels off from the top: each time the next one shows through.
		for i := len(levels) - 1; i > 0; i-- {
			c.Unset("PV_LOG_LEVEL", levels[i])
			if got, want := c.Int(LogLevel), int(levels[i-1]); got != want {
				t.Errorf("after Unset(%s): Int = %d, want %d", levels[i], got, want)
			}
			if got, want := c.Source(LogLevel), levels[i-1]; got != want {
				t.Errorf("after Unset(%s): Source = %s, want %s", levels[i], got, want)
			}
		}
	}
	// PH side.
	c := New(nil)
	for _, l := range []Level{PHCmdline, PHConf, Env, Policy, OEM} {
		if err := c.Set("creds.host", "h"+itoa(int(l)), l); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := c.Get(HubCredsHost), "h"+itoa(int(Env)); got != want {
		t.Errorf("Get(PH_CREDS_HOST) = %q, want %q", got, want)
	}
}

func reverse(l []Level) []Level {
	out := make([]Level, len(l))
	for i := range l {
		out[len(l)-1-i] = l[i]
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestMetadataOverrideRestore(t *testing.T) {
	dir := t.TempDir()
	conf := writeFile(t, dir, "pantavisor.config", "PV_LOG_LEVEL=3\nPV_STORAGE_GC_RESERVED=7\n")
	c, err := Load(Options{ConfigFile: conf, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("log.level", "5", Metadata); err != nil {
		t.Fatalf("Set(log.level, Metadata) = %v", err)
	}
	if got := c.Int(LogLevel); got != 5 {
		t.Errorf("with user-meta: Int(PV_LOG_LEVEL) = %d, want 5", got)
	}
	if got := c.Source(LogLevel); got != Metadata {
		t.Errorf("with user-meta: Source = %s, want metadata", got)
	}
	// A later boot-level reload does not beat metadata.
	if err := c.Set("PV_LOG_LEVEL", "1", Env); err != nil {
		t.Fatal(err)
	}
	if got := c.Int(LogLevel); got != 5 {
		t.Errorf("env under metadata: Int = %d, want 5", got)
	}
	c.Unset("log.level", Metadata)
	if got := c.Int(LogLevel); got != 1 {
		t.Errorf("after removal: Int = %d, want 1 (env)", got)
	}
	c.Unset("PV_LOG_LEVEL", Env)
	if got := c.Int(LogLevel); got != 3 {
		t.Errorf("after env removal: Int = %d, want 3 (conf)", got)
	}
	// Non run-time keys cannot be overridden by metadata.
	if err := c.Set("PV_SYSTEM_RUNDIR", "/x", Metadata); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("Set(PV_SYSTEM_RUNDIR, Metadata) = %v, want ErrNotAllowed", err)
	}
	// pantahub.log.push is the user-meta name of PV_LOG_PUSH.
	if err := c.Set("pantahub.log.push", "0", Metadata); err != nil || c.Bool(LogPush) {
		t.Errorf("Set(pantahub.log.push, 0) = %v, Bool(PV_LOG_PUSH) = %v, want nil, false", err, c.Bool(LogPush))
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	conf := writeFile(t, dir, "pantavisor.config", strings.Join([]string{
		"PV_LOG_LEVEL=1",
		"pv_debug_shell=0", // keys are case-insensitive: this is PV_DEBUG_SHELL
		"log.server.outputs=filetree,stdout",
		"PV_POLICY=prod",
		"PH_CREDS_HOST=not.allowed.here",
		"PV_UPDATER_COMMIT_DELAY=2min",
		"PV_WDT_MODE=bogus",
		"sysctl.vm.swappiness=10",
		"garbage line",
		"PV_SECUREBOOT_MODE=audit",
		"PV_SECUREBOOT_MODE=lenient", // last duplicate wins
		"",
	}, "\n"))
	etc := filepath.Join(dir, "etc")
	writeFile(t, etc, "policies/prod.config", "PV_DEBUG_SHELL=0\nPV_DEBUG_SSH=0\nPV_SECUREBOOT_MODE=strict\nPV_POLICY=other\nPV_OEM_NAME=myoem\n")
	ph := writeFile(t, dir, "pantahub.config", "PH_CREDS_HOST=hub.example\nPH_CREDS_SECRET=s3cret\nPV_LOG_LEVEL=5\n")
	c, err := Load(Options{
		ConfigFile:   conf,
		PHConfigFile: ph,
		Cmdline:      `console=ttyS0 pv_rev=5 pv_try=6 pv_log.level=2 ph_creds.port=8443 PV_LXC_LOG_LEVEL=4 "pv_sysctl.kernel.core_pattern=|/bin/x --y" pv_bogus=1`,
		Env:          []string{"PATH=/bin", "PV_LXC_LOG_LEVEL=6", "PH_CREDS_PROXY_HOST=proxy", "pv_rev=5", "PV_UNKNOWN=1"},
		EtcDir:       etc,
		Log:          testLogger(t),
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, tc := range []struct {
		key, want string
		src       Level
	}{
		{"PV_LOG_LEVEL", "2", PVCmdline},
		{"PV_LOG_SERVER_OUTPUTS", "filetree,stdout", PVConf},
		{"PV_POLICY", "prod", PVConf},
		{"PV_DEBUG_SHELL", "0", Policy},
		{"PV_DEBUG_SSH", "0", Policy},
		{"PV_SECUREBOOT_MODE", "strict", Policy},
		{"PV_OEM_NAME", "myoem", Policy},
		{"PV_UPDATER_COMMIT_DELAY", "120", PVConf},
		{"PV_WDT_MODE", "shutdown", Default},
		{"PV_LXC_LOG_LEVEL", "6", Env},
		{"PH_CREDS_HOST", "hub.example", PHConf},
		{"PH_CREDS_PORT", "8443", PHCmdline},
		{"PH_CREDS_PROXY_HOST", "proxy", Env},
		{"PV_SYSCTL_VM_SWAPPINESS", "10", PVConf},
		{"PV_SYSCTL_KERNEL_CORE_PATTERN", "|/bin/x --y", PVCmdline},
	} {
		if got := c.get(tc.key); got != tc.want {
			t.Errorf("Get(%s) = %q, want %q", tc.key, got, tc.want)
		}
		if got := c.source(tc.key); got != tc.src {
			t.Errorf("Source(%s) = %s, want %s", tc.key, got, tc.src)
		}
	}
	// OEM from the revision.
	trail := filepath.Join(dir, "trails", "3")
	if got, want := c.OEMPath(trail), filepath.Join(trail, "myoem", "prod.config"); got != want {
		t.Errorf("OEMPath = %q, want %q", got, want)
	}
	writeFile(t, trail, "myoem/prod.config", "PV_STORAGE_GC_RESERVED=20\nPV_SECUREBOOT_MODE=disabled\nPV_LOG_LEVEL=4\n")
	if err := c.LoadOEM(c.OEMPath(trail)); err != nil {
		t.Fatalf("LoadOEM: %v", err)
	}
	if got := c.Int(StorageGCReserved); got != 20 {
		t.Errorf("after OEM: PV_STORAGE_GC_RESERVED = %d, want 20", got)
	}
	if got := c.Get(SecurebootMode); got != "strict" {
		t.Errorf("after OEM: PV_SECUREBOOT_MODE = %q, want strict (OEM not allowed)", got)
	}
	if got := c.Int(LogLevel); got != 2 {
		t.Errorf("after OEM: PV_LOG_LEVEL = %d, want 2 (cmdline outranks oem)", got)
	}
	// A revision without OEM file drops the previous OEM values.
	err = c.LoadOEM(c.OEMPath(filepath.Join(dir, "trails", "4")))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadOEM(missing) = %v, want fs.ErrNotExist", err)
	}
	if got := c.Int(StorageGCReserved); got != 5 {
		t.Errorf("after OEM removal: PV_STORAGE_GC_RESERVED = %d, want 5", got)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(Options{ConfigFile: filepath.Join(dir, "missing")}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing conf) = %v, want fs.ErrNotExist", err)
	}
	if _, err := Load(Options{Env: []string{"PV_POLICY=../x"}, EtcDir: dir}); !errors.Is(err, ErrBadPolicy) {
		t.Errorf("Load(PV_POLICY=../x) = %v, want ErrBadPolicy", err)
	}
	if _, err := Load(Options{Env: []string{"PV_POLICY=nope"}, EtcDir: dir}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing policy) = %v, want fs.ErrNotExist", err)
	}
	c, err := Load(Options{PHConfigFile: filepath.Join(dir, "missing")})
	if err != nil || c == nil {
		t.Errorf("Load(missing pantahub.config) = %v, want nil", err)
	}
}

func TestInitMode(t *testing.T) {
	c := New(nil)
	for _, tc := range []struct {
		conf  string
		args  []string
		want  Mode
		debug bool
	}{
		{"", nil, Embedded, false},
		{"appengine", nil, AppEngine, false},
		{"standalone", []string{"pv_embedded"}, Embedded, false},
		{"", []string{"--config", "x", "pv_appengine", "pv_debug"}, AppEngine, true},
		{"", []string{"pv_appengine", "pv_standalone"}, Standalone, false},
	} {
		c.Unset("PV_SYSTEM_INIT_MODE", PVConf)
		if tc.conf != "" {
			if err := c.Set("PV_SYSTEM_INIT_MODE", tc.conf, PVConf); err != nil {
				t.Fatal(err)
			}
		}
		got, debug := InitMode(c, tc.args)
		if got != tc.want || debug != tc.debug {
			t.Errorf("InitMode(%q, %q) = %s, %v, want %s, %v", tc.conf, tc.args, got, debug, tc.want, tc.debug)
		}
	}
	if got, _ := InitMode(nil, nil); got != Embedded {
		t.Errorf("InitMode(nil) = %s, want embedded", got)
	}
}

func TestApplyUserMeta(t *testing.T) {
	c := New(nil)
	for _, tc := range []struct {
		key, value string
		deleted    bool
		applied    bool
		err        error
		check      string
		want       string
	}{
		{"pvr-sdk.authorized_keys", "ssh-ed25519 AAAA", false, false, nil, "", ""},
		{"log.level", "4\n", false, true, nil, "PV_LOG_LEVEL", "4"},
		{"PV_STORAGE_GC_THRESHOLD", "30", false, true, nil, "PV_STORAGE_GC_THRESHOLD", "30"},
		{"PV_SYSTEM_RUNDIR", "/x", false, false, ErrNotAllowed, "PV_SYSTEM_RUNDIR", "/pv"},
		{"PV_LOG_LEVEL", "loud", false, false, ErrBadValue, "PV_LOG_LEVEL", "4"},
		{"log.level", "", true, true, nil, "PV_LOG_LEVEL", "0"},
	} {
		applied, err := c.ApplyUserMeta(tc.key, []byte(tc.value), tc.deleted)
		if applied != tc.applied || !errors.Is(err, tc.err) {
			t.Errorf("ApplyUserMeta(%q, %q, %v) = %v, %v, want %v, %v", tc.key, tc.value, tc.deleted, applied, err, tc.applied, tc.err)
		}
		if tc.check != "" {
			if got := c.get(tc.check); got != tc.want {
				t.Errorf("after ApplyUserMeta(%q): Get(%s) = %q, want %q", tc.key, tc.check, got, tc.want)
			}
		}
	}
}

func TestConcurrentAccess(t *testing.T) {
	c := New(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			c.Set("PV_LOG_LEVEL", strconv.Itoa(i%6), Metadata)
			c.Unset("PV_LOG_LEVEL", Metadata)
		}
	}()
	for i := 0; i < 200; i++ {
		_ = c.Int(LogLevel)
		_ = c.Entries()
		_ = c.Legacy()
	}
	<-done
	// Every Set was undone by its Unset: the default is back.
	if got, want := c.Get(LogLevel), New(nil).Get(LogLevel); got != want {
		t.Errorf("Get(PV_LOG_LEVEL) after concurrent Set/Unset = %q, want the default %q", got, want)
	}
	for _, e := range c.Entries() {
		if e.Key == "PV_LOG_LEVEL" && e.Modified != Default.String() {
			t.Errorf("PV_LOG_LEVEL modified = %q, want %q", e.Modified, Default.String())
		}
	}
}

func TestLoadLogsRejections(t *testing.T) {
	dir := t.TempDir()
	conf := writeFile(t, dir, "pantavisor.config", "PH_CREDS_HOST=h\nPV_LOG_LEVEL=loud\nPV_NOPE=1\nno equals here\n")
	var buf bytes.Buffer
	c, err := Load(Options{ConfigFile: conf, Cmdline: "pv_rev=3 pv_try=4 pv_quickboot=1 pv_nope=1", Log: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`msg="config: key rejected" key=PH_CREDS_HOST level="pv conf file"`,
		`reason="PH_CREDS_HOST at level \"pv conf file\": key not allowed at this level`,
		`msg="config: key rejected" key=PV_LOG_LEVEL level="pv conf file"`,
		`is not an integer`,
		`msg="config: unknown key" key=PV_NOPE level="pv conf file"`,
		`msg="config: unknown key" key=nope level="pv cmdline"`,
		`missing '='`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, quiet := range []string{"rev", "try", "quickboot"} {
		if strings.Contains(out, "key="+quiet+" ") {
			t.Errorf("log mentions boot argument %q:\n%s", quiet, out)
		}
	}
	if got := c.Get(HubCredsHost); got != "api.pantahub.com" {
		t.Errorf("rejected PH_CREDS_HOST applied: %q", got)
	}
	if got := c.Get(LogLevel); got != "0" {
		t.Errorf("rejected PV_LOG_LEVEL applied: %q", got)
	}
}

// The docs' pantahub.config example sets the commit delay there.
func TestCommitDelayFromPHConfig(t *testing.T) {
	dir := t.TempDir()
	ph := dir + "/pantahub.config"
	if err := os.WriteFile(ph, []byte("updater.interval=5\nupdater.commit_delay=40\ncreds.host=api.pantahub.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := New(nil)
	if err := c.LoadPHConfig(ph); err != nil {
		t.Fatal(err)
	}
	if got := c.Get(UpdaterCommitDelay); got != "40" {
		t.Errorf("PV_UPDATER_COMMIT_DELAY = %q, want 40", got)
	}
}

// TestContainerKeys: the daemon reads PV_DISABLE_AUTODEV and
// PV_LXC_EXTRA_CONF; before issue 11 they were missing from the table, so
// setting them logged "unknown key" and Get returned "".
func TestContainerKeys(t *testing.T) {
	c := New(testLogger(t))
	for _, s := range [][2]string{
		{"PV_DISABLE_AUTODEV", "yes"},
		{"PV_LXC_EXTRA_CONF", "lxc.tty.max = 1; lxc.pty.max = 2"},
	} {
		if err := c.Set(s[0], s[1], PVConf); err != nil {
			t.Errorf("Set(%s, %q, pv conf file) = %v, want nil", s[0], s[1], err)
		}
	}
	if !c.Bool(DisableAutodev) {
		t.Errorf("Bool(DisableAutodev) = false, want true")
	}
	if got, want := c.Get(LXCExtraConf), "lxc.tty.max = 1; lxc.pty.max = 2"; got != want {
		t.Errorf("Get(LXCExtraConf) = %q, want %q", got, want)
	}
	// Not from user metadata or the revision's OEM file: they reach the
	// LXC configuration of every container.
	for _, lvl := range []Level{Metadata, OEM} {
		if err := c.Set("PV_LXC_EXTRA_CONF", "lxc.x = 1", lvl); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Set(PV_LXC_EXTRA_CONF, %s) = %v, want ErrNotAllowed", lvl, err)
		}
	}
	if New(nil).Bool(DisableAutodev) || New(nil).Get(LXCExtraConf) != "" {
		t.Errorf("defaults: autodev disabled or extra conf set, want neither")
	}
}
