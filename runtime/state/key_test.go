package state

import (
	"errors"
	"strings"
	"testing"
)

func TestIsSha(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{sha1, true},
		{sha3, true},
		{strings.ToUpper(sha3), false},
		{sha1[:63], false},
		{sha1 + "1", false},
		{"", false},
		{strings.Repeat("g", 64), false},
		{strings.Repeat("0", 63) + " ", false},
	}
	for _, tt := range tests {
		if got := IsSha(tt.in); got != tt.want {
			t.Errorf("IsSha(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestValidKey(t *testing.T) {
	good := []string{"a", "a/b", "_config/app/etc/x.conf", "a.b/c..d", ".hidden", "a/...", "é/ü", "a b"}
	for _, k := range good {
		if err := ValidKey(k); err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil", k, err)
		}
	}
	bad := []string{"", "/a", "a/", "a//b", ".", "..", "a/..", "../a", "a/./b", "a\x00b", `a\b`, "//"}
	for _, k := range bad {
		if err := ValidKey(k); !errors.Is(err, ErrBadKey) {
			t.Errorf("ValidKey(%q) = %v, want ErrBadKey", k, err)
		}
	}
}

func TestOwner(t *testing.T) {
	tests := []struct{ in, want string }{
		{"app/run.json", "app"},
		{"app/a/b/c", "app"},
		{"_config/app/etc/x", "app"},
		{"_config/app", "app"},
		{"bsp/kernel.img", "bsp"},
		{"_sigs/app.json", "_sigs"},
		{"device.json", ""},
		{"groups.json", ""},
		{"#spec", ""},
	}
	for _, tt := range tests {
		if got := Owner(tt.in); got != tt.want {
			t.Errorf("Owner(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestVolumeFile(t *testing.T) {
	tests := []struct{ in, file, handler string }{
		{"root.squashfs", "root.squashfs", ""},
		{"dm:root.squashfs", "root.squashfs", "dm"},
		{"a:b:c", "b:c", "a"},
	}
	for _, tt := range tests {
		if f, h := VolumeFile(tt.in); f != tt.file || h != tt.handler {
			t.Errorf("VolumeFile(%q) = %q, %q, want %q, %q", tt.in, f, h, tt.file, tt.handler)
		}
	}
}

func TestDiff(t *testing.T) {
	q := func(s string) string { return `"` + s + `"` }
	old := mustParse(t, doc(
		"app/run.json", `{"name":"app","config":"c"}`,
		"app/c", q(sha1),
		"app/gone", q(sha1),
		"_config/app/etc/x", q(sha1),
		"bsp/kernel", q(sha1),
		"device.json", `{"groups":[]}`,
		"data.json", `{"a":1.5}`,
	))
	new := mustParse(t, doc(
		"app/run.json", `{"config":"c","name":"app"}`, // same canonical bytes
		"app/c", q(sha2),
		"app/added", q(sha1),
		"_config/app/etc/x", q(sha2),
		"bsp/kernel", q(sha1),
		"device.json", `{"disks":[]}`,
		"data.json", `{"a":15e-1}`, // same number
	))
	want := []Change{
		{Path: "_config/app/etc/x", Owner: "app", Kind: Modified},
		{Path: "app/added", Owner: "app", Kind: Added},
		{Path: "app/c", Owner: "app", Kind: Modified},
		{Path: "app/gone", Owner: "app", Kind: Removed},
		{Path: "device.json", Owner: "", Kind: Modified},
	}
	got := Diff(old, new)
	if len(got) != len(want) {
		t.Fatalf("Diff() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Diff()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if d := Diff(new, new); len(d) != 0 {
		t.Errorf("Diff(s, s) = %v, want none", d)
	}
	if d := Diff(nil, old); len(d) != len(old.Keys()) || d[0].Kind != Added {
		t.Errorf("Diff(nil, s) = %v, want every key added", d)
	}
	if d := Diff(old, New()); len(d) != len(old.Keys()) || d[0].Kind != Removed {
		t.Errorf("Diff(s, New()) = %v, want every key removed", d)
	}
	for k, want := range map[ChangeKind]string{Added: "added", Removed: "removed", Modified: "modified", 0: "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("ChangeKind(%d).String() = %q, want %q", k, got, want)
		}
	}
}
