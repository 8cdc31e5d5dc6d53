package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitCmdline(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a b\tc\n", []string{"a", "b", "c"}},
		{`x "PV_SYSCTL_KERNEL_CORE_PATTERN=|/lib/pv/pvcrash --skip" y`, []string{"x", "PV_SYSCTL_KERNEL_CORE_PATTERN=|/lib/pv/pvcrash --skip", "y"}},
		{`a="b c"d`, []string{"a=b cd"}},
		{`""`, []string{""}},
		{`"unterminated x`, []string{"unterminated x"}},
	} {
		if got := SplitCmdline(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCmdline(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCmdlineArgs(t *testing.T) {
	got := CmdlineArgs("console=ttyS0,115200 pv_rev=5 pv_try=6 quiet pv_rev=7 root=LABEL=x")
	want := map[string]string{"console": "ttyS0,115200", "pv_rev": "7", "pv_try": "6", "quiet": "", "root": "LABEL=x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CmdlineArgs = %v, want %v", got, want)
	}
}

func TestCmdlineConfig(t *testing.T) {
	got := cmdlineConfig("pv_rev=1 pv_try=2 pv_quickboot=1 pv_log.level=3 PV_LOG_LEVEL=4 pv_log_level=5 ph_creds.host=h PH_CREDS_PORT=1 pv_sysctl.vm.x=1 pv_unknown=1 other=1 pv_noeq")
	var names []string
	for _, p := range got {
		names = append(names, p.name+"@"+p.level.String())
	}
	want := []string{
		"log.level@pv cmdline", "PV_LOG_LEVEL@pv cmdline", "pv_log_level@pv cmdline",
		"creds.host@ph cmdline", "PH_CREDS_PORT@ph cmdline", "sysctl.vm.x@pv cmdline", "unknown@pv cmdline",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("cmdlineConfig names = %q, want %q", names, want)
	}
}

func FuzzCmdline(f *testing.F) {
	for _, s := range []string{
		"console=ttyS0 pv_rev=5 pv_try=6",
		`"PV_SYSCTL_KERNEL_CORE_PATTERN=|/lib/pv/pvcrash --skip" pv_log.level=5`,
		`ph_creds.host="a b" pv_x`, "\x00pv_=\"", "pv_sysctl.a..b=1 PV_SYSCTL__=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words := SplitCmdline(s)
		for _, w := range words {
			if strings.ContainsAny(w, "\"") {
				t.Fatalf("word %q keeps a quote", w)
			}
		}
		args := CmdlineArgs(s)
		if len(args) > len(words) {
			t.Fatalf("CmdlineArgs has %d entries for %d words", len(args), len(words))
		}
		c, err := Load(Options{Cmdline: s})
		if err != nil {
			// Only a policy from the command line can fail loading.
			if c.Get(PolicyName) == "" {
				t.Fatalf("Load(%q) = %v", s, err)
			}
			return
		}
		for _, e := range c.Entries() {
			if e.Modified != "default" && e.Modified != "pv cmdline" && e.Modified != "ph cmdline" {
				t.Fatalf("entry %+v from cmdline has level %q", e, e.Modified)
			}
		}
	})
}
