package update

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// parseMap builds a state from a map whose string values are contents.
func parseMap(t *testing.T, m map[string]any) *state.State {
	t.Helper()
	out := map[string]any{}
	for k, v := range m {
		if s, ok := v.(string); ok && k != "#spec" {
			v = sha(s)
		}
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Parse(b)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return st
}

func TestPlan(t *testing.T) {
	newApp := map[string]any{"name": "extra", "config": "lxc.container.conf", "root-volume": "root.squashfs", "group": "app"}
	tests := []struct {
		name        string
		next        map[string]any
		reboot      bool
		stop, start []string
	}{
		{"nothing changed", baseState(), false, []string{}, []string{}},
		{"app rootfs", appChange(), false, []string{"app"}, []string{"app"}},
		{"two apps", with(baseState(), map[string]any{"app/root.squashfs": "x", "web/lxc.container.conf": "y"}), false,
			[]string{"app", "web"}, []string{"app", "web"}},
		{"app config overlay", with(baseState(), map[string]any{"_config/app/etc/x.conf": "conf"}), false,
			[]string{"app"}, []string{"app"}},
		{"added container app", with(baseState(), map[string]any{"extra/run.json": newApp, "extra/root.squashfs": "e",
			"extra/lxc.container.conf": "c"}), false, []string{}, []string{"extra"}},
		{"removed app", with(baseState(), map[string]any{"web/run.json": nil, "web/root.squashfs": nil,
			"web/lxc.container.conf": nil}), false, []string{"web"}, []string{}},
		{"bsp", bspChange(), true, nil, nil},
		{"system container", with(baseState(), map[string]any{"os/root.squashfs": "os-2"}), true, nil, nil},
		{"root file", with(baseState(), map[string]any{"README.md": "hi"}), true, nil, nil},
		{"device.json", with(baseState(), map[string]any{"device.json": map[string]any{}}), true, nil, nil},
		{"app turned system", with(baseState(), map[string]any{"app/run.json": map[string]any{"name": "app",
			"config": "lxc.container.conf", "root-volume": "root.squashfs", "group": "app", "restart_policy": "system"}}), true, nil, nil},
		{"unowned _config", with(baseState(), map[string]any{"_config/ghost/x": "g"}), true, nil, nil},
	}
	cur := parseMap(t, baseState())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Plan(cur, parseMap(t, tt.next))
			if p.Reboot != tt.reboot {
				t.Fatalf("Plan reboot = %v (%s), want %v", p.Reboot, p.Why, tt.reboot)
			}
			if tt.reboot {
				if p.Why == "" {
					t.Error("reboot without a reason")
				}
				return
			}
			if !slices.Equal(p.Stop, tt.stop) || !slices.Equal(p.Start, tt.start) {
				t.Errorf("Plan stop %v start %v, want %v %v", p.Stop, p.Start, tt.stop, tt.start)
			}
		})
	}
}

func FuzzParseRevision(f *testing.F) {
	for _, s := range []string{"", "0", "12", "locals/dev", "locals/", "../1", "locals/a/b", "01", "locals/..", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rev, err := ParseRevision(s)
		if err != nil {
			if rev != "" {
				t.Fatalf("ParseRevision(%q) = %q with error", s, rev)
			}
			return
		}
		if rev != s || rev == "" || rev[0] == '/' || slices.Contains([]string{".", ".."}, rev) {
			t.Fatalf("ParseRevision(%q) = %q accepted", s, rev)
		}
		for _, part := range []string{"..", "\x00", "\\"} {
			if containsElem(rev, part) {
				t.Fatalf("ParseRevision(%q) accepted %q", s, part)
			}
		}
	})
}

func containsElem(rev, bad string) bool {
	if bad == ".." {
		for _, e := range splitSlash(rev) {
			if e == ".." || e == "." || e == "" {
				return true
			}
		}
		return false
	}
	return slices.Contains([]byte(rev), bad[0])
}

func splitSlash(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// TestNextValues pins the values the daemon's adapter converts.
func TestNextValues(t *testing.T) {
	for n, want := range map[Next]int{Stay: 0, Reboot: 1, Rollback: 2} {
		if int(n) != want {
			t.Errorf("%v = %d, want %d", n, int(n), want)
		}
	}
}
