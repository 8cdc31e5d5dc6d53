package pantavisor

import (
	"errors"
	"testing"
)

// A boot loader that does not put pv_rev on the command line (rpiab)
// names the running and tried revisions through Options.Booted; one
// that does (grub, uboot) is not asked.
func TestBootedRevision(t *testing.T) {
	booted := func(Env) (string, string, error) { return "3", "3", nil }
	for _, tc := range []struct {
		cmdline, rev, try string
	}{
		{"console=ttyS1 PV_BOOTLOADER_TYPE=rpiab", "3", "3"},
		{"pv_rev=2 pv_try= console=ttyS0", "2", ""},
	} {
		d, err := New(Options{Cmdline: tc.cmdline, Booted: booted})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.bootedRevision(); err != nil {
			t.Fatal(err)
		}
		if d.Revision() != tc.rev || d.try != tc.try {
			t.Errorf("%q: rev, try = %q, %q, want %q, %q", tc.cmdline, d.Revision(), d.try, tc.rev, tc.try)
		}
	}
	for _, bad := range []func(Env) (string, string, error){
		func(Env) (string, string, error) { return "", "", errors.New("no autoboot.txt") },
		func(Env) (string, string, error) { return "../x", "", nil },
		func(Env) (string, string, error) { return "1", "a/../../b", nil },
	} {
		d, err := New(Options{Cmdline: "quiet", Booted: bad})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.bootedRevision(); err == nil {
			t.Errorf("bootedRevision with a bad boot loader answer = nil, rev %q try %q", d.Revision(), d.try)
		}
	}
}
