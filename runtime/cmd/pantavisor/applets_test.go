package main

import (
	"slices"
	"testing"
)

func TestApplet(t *testing.T) {
	for _, tc := range []struct {
		argv     []string
		name     string
		wantArgs []string
	}{
		{nil, "pantavisor", nil},
		{[]string{"/init"}, "pantavisor", []string{}},
		{[]string{"/usr/bin/pantavisor", "pv_embedded"}, "pantavisor", []string{"pv_embedded"}},
		{[]string{"pantavisor", "--config", "/etc/x"}, "pantavisor", []string{"--config", "/etc/x"}},
		{[]string{"/usr/bin/pventer", "-c", "app"}, "pventer", []string{"-c", "app"}},
		{[]string{"pantavisor", "pventer", "-c", "app"}, "pventer", []string{"-c", "app"}},
		{[]string{"pantavisor", "pantavisor"}, "pantavisor", []string{"pantavisor"}},
		{[]string{"/lib/pv/pvcrash", "--skip"}, "pvcrash", []string{"--skip"}},
		{[]string{"/init", "nosuchapplet"}, "pantavisor", []string{"nosuchapplet"}},
	} {
		name, args := applet(tc.argv)
		if name != tc.name || !slices.Equal(args, tc.wantArgs) {
			t.Errorf("applet(%q) = %q %q, want %q %q", tc.argv, name, args, tc.name, tc.wantArgs)
		}
	}
}
