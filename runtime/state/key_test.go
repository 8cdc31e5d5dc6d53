package state

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
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
	good := []string{"a", "a/b", "_config/app/etc/x.conf", "a.b/c..d", ".hidden", "a/...", "é/ü", "a b", ".pvx", "a/.pv/b", ".pvrc/x"}
	for _, k := range good {
		if err := ValidKey(k); err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil", k, err)
		}
	}
	bad := []string{"", "/a", "a/", "a//b", ".", "..", "a/..", "../a", "a/./b", "a\x00b", `a\b`, "//", ".pv", ".pv/done", ".pvr/json", ".pvr"}
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

func TestFieldPath(t *testing.T) {
	deep := join(join(join(join(top("a"), "b"), "c"), "d"), "e")
	tests := []struct {
		got  fp
		want string
	}{
		{top("name"), "name"},
		{top(""), ""},
		{index(top(""), 2), "[2]"},
		{join(index(top("logs"), 0), "file"), "logs[0].file"},
		{index(index(top("m"), 1), 2), "m[1][2]"},
		{deep, "a.b.c.d.e"},
		{index(join(join(join(top("a"), "b"), "c"), "d"), 3), "a.b.c.d[3]"},
		{index(index(join(join(join(top("a"), "b"), "c"), "d"), 3), 4), "a.b.c.d[3][4]"},
	}
	for _, tt := range tests {
		if got := tt.got.String(); got != tt.want {
			t.Errorf("fp.String() = %q, want %q", got, tt.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	for in, want := range map[string]string{
		`{}`: "object", `[]`: "array", `"s"`: "string", `true`: "boolean", `false`: "boolean",
		`null`: "null", `1`: "number", `-1.5E0`: "number", ``: "nothing",
	} {
		if got := kindOf([]byte(in)); got != want {
			t.Errorf("kindOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBackoffWait(t *testing.T) {
	for policy, want := range map[string]time.Duration{"reboot": 0, "never": 0, "30s": 30 * time.Second, "10min": 10 * time.Minute, "2h": 2 * time.Hour, "bogus": 0} {
		a := &AutoRecovery{BackoffPolicy: policy}
		got, ok := a.BackoffWait()
		if got != want || ok != (want != 0) {
			t.Errorf("BackoffWait(%q) = %v, %v, want %v, %v", policy, got, ok, want, want != 0)
		}
	}
}

func TestDisksAllFields(t *testing.T) {
	s := mustParse(t, doc("device.json", `{"disks":[{"name":"dual0","type":"dual","path":"/p","mode":"nxp","format":"ext4",
		"provision":"file","provision_ops":"disksize=1M","mount_target":"/m","mount_options":"MS_NOATIME","format_options":"-q",
		"uuid":"u","default":true,"disks":["a","b"],"init_order":["primary","create-primary"],"future":1}]}`))
	d := s.Device().Disk("dual0")
	want := Disk{Name: "dual0", Type: "dual", Path: "/p", Mode: "nxp", Format: "ext4", Provision: "file",
		ProvisionOps: "disksize=1M", MountTarget: "/m", MountOptions: "MS_NOATIME", FormatOptions: "-q", UUID: "u",
		Default: true, Disks: []string{"a", "b"}, InitOrder: []string{"primary", "create-primary"}}
	if d == nil {
		t.Fatal("Disk(dual0) = nil")
	}
	d.Raw = nil
	if !reflect.DeepEqual(*d, want) {
		t.Errorf("Disk(dual0) = %+v, want %+v", *d, want)
	}
	if s.Device().Disk("nope") != nil || (*Device)(nil).Disk("x") != nil {
		t.Errorf("Disk(unknown) != nil, want nil")
	}
	for _, bad := range []string{`{"name":"d","type":"directory","default":1}`, `{"name":"d","type":"directory","aliases":"a"}`} {
		if _, err := Parse([]byte(doc("device.json", `{"disks":[`+bad+`]}`))); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(disk %s) error = %v, want ErrInvalid", bad, err)
		}
	}
	p := &Platform{Name: "n", Dir: "d"}
	if got := p.String(); got != "n (d/run.json)" {
		t.Errorf("Platform.String() = %q, want %q", got, "n (d/run.json)")
	}
}
