package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLegacy(t *testing.T) {
	c := New(nil)
	for _, s := range [][2]string{
		{"PH_CREDS_SECRET", "s3cret"}, {"PV_SECUREBOOT_MODE", "strict"}, {"PV_LOG_DIR_MAXSIZE", "10%"},
	} {
		lvl := PVConf
		if strings.HasPrefix(s[0], "PH_") {
			lvl = PHConf
		}
		if err := c.Set(s[0], s[1], lvl); err != nil {
			t.Fatal(err)
		}
	}
	got := c.Legacy()
	for alias, want := range map[string]any{
		"log.level":             0,
		"control.remote":        true,
		"debug.shell.autologin": false,
		"updater.commit.delay":  25,
		"meta.cache.dir":        "/storage/cache/meta",
		"updater.keep_factory":  false,
		"pantahub.log.push":     true,
		"creds.id":              "",
		"creds.secret":          Masked,
		"secureboot.mode":       3,
		"bootloader.type":       0,
		"log.maxsize":           int64(2097152),
		"creds.host":            "api.pantahub.com",
	} {
		if got[alias] != want {
			t.Errorf("Legacy()[%q] = %#v, want %#v", alias, got[alias], want)
		}
	}
	for _, absent := range []string{"PV_LOG_LEVEL", "PV_LOG_DIR_MAXSIZE", "log.push", "cache.usrmetadir"} {
		if _, ok := got[absent]; ok {
			t.Errorf("Legacy() has %q", absent)
		}
	}
	if _, err := json.Marshal(got); err != nil {
		t.Errorf("json.Marshal(Legacy()) = %v", err)
	}
}

func TestEntries(t *testing.T) {
	c := New(nil)
	steps := []struct {
		key, val string
		lvl      Level
	}{
		{"PV_LOG_LEVEL", "1", Args},
		{"PV_LOG_DIR", "/l", PVConf},
		{"PH_CREDS_HOST", "h", PHConf},
		{"PV_DEBUG_SHELL", "0", Policy},
		{"PV_LOG_CAPTURE", "0", OEM},
		{"PV_LXC_LOG_LEVEL", "3", PVCmdline},
		{"PH_CREDS_PORT", "1", PHCmdline},
		{"PV_WDT_TIMEOUT", "1", Env},
		{"PV_STORAGE_GC_RESERVED", "9", Metadata},
		{"PV_DEBUG_SSH", "0", Command},
		{"PH_CREDS_PRN", "prn:::devices:/x", PHConf},
		{"PV_SYSCTL_VM_SWAPPINESS", "10", Env},
	}
	for _, s := range steps {
		if err := c.Set(s.key, s.val, s.lvl); err != nil {
			t.Fatal(err)
		}
	}
	byKey := map[string]Entry{}
	entries := c.Entries()
	for i, e := range entries {
		byKey[e.Key] = e
		if i > 0 && entries[i-1].Key >= e.Key {
			t.Errorf("Entries not sorted at %d: %q >= %q", i, entries[i-1].Key, e.Key)
		}
	}
	if got, want := len(entries), len(keyTable)+1; got != want {
		t.Errorf("len(Entries()) = %d, want %d", got, want)
	}
	for _, s := range steps {
		e := byKey[s.key]
		want := s.val
		if s.key == "PH_CREDS_PRN" {
			want = Masked
		}
		if e.Value != want || e.Modified != s.lvl.String() {
			t.Errorf("entry %s = %+v, want value %q modified %q", s.key, e, want, s.lvl)
		}
	}
	if e := byKey["PV_BOOTLOADER_TYPE"]; e.Modified != "default" || e.Value != "uboot" {
		t.Errorf("entry PV_BOOTLOADER_TYPE = %+v, want uboot/default", e)
	}
	if e := byKey["PH_CREDS_SECRET"]; e.Value != "" {
		t.Errorf("empty secret shown as %q, want \"\"", e.Value)
	}
	b, err := json.Marshal(entries[:1])
	if err != nil || !strings.HasPrefix(string(b), `[{"key":"`) || !strings.Contains(string(b), `"modified":"`) {
		t.Errorf("json = %s, %v", b, err)
	}
	for l := Default; l < numLevels; l++ {
		if got, ok := ParseLevel(l.String()); !ok || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), got, ok)
		}
	}
	want := "default args pv conf file ph conf file policy oem config pv cmdline ph cmdline env metadata command"
	var names []string
	for l := Default; l < numLevels; l++ {
		names = append(names, l.String())
	}
	if got := strings.Join(names, " "); got != want {
		t.Errorf("level names = %q, want %q", got, want)
	}
}

func TestWritePHConfig(t *testing.T) {
	dir := t.TempDir()
	c := New(nil)
	for k, v := range map[string]string{"PH_CREDS_ID": "abc", "PH_CREDS_SECRET": "s3", "PH_CREDS_HOST": "hub"} {
		if err := c.Set(k, v, PHConf); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "pantahub.config")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.WritePHConfig(p); err != nil {
		t.Fatalf("WritePHConfig: %v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, line := range []string{"PH_CREDS_ID=abc\n", "PH_CREDS_SECRET=s3\n", "PH_CREDS_HOST=hub\n", "PH_CREDS_PORT=443\n", "PH_UPDATER_INTERVAL=60\n", "PH_CREDS_TYPE=builtin\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("pantahub.config lacks %q:\n%s", line, got)
		}
	}
	for _, absent := range []string{"PH_CREDS_PRN=", "PH_CREDS_PROXY_HOST=", "PV_"} {
		if strings.Contains(got, absent) {
			t.Errorf("pantahub.config has %q:\n%s", absent, got)
		}
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, %v, want 0600", fi.Mode(), err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("dir has %d entries, want 1 (no temp files left)", len(ents))
	}
	// Round trip: a fresh config reads back the same values.
	c2 := New(nil)
	if err := c2.LoadPHConfig(p); err != nil {
		t.Fatal(err)
	}
	if got := c2.Get(HubCredsSecret); got != "s3" {
		t.Errorf("round trip PH_CREDS_SECRET = %q, want s3", got)
	}
	if err := c.WritePHConfig(filepath.Join(dir, "nodir", "x")); err == nil {
		t.Errorf("WritePHConfig into a missing dir = nil, want error")
	}
}
