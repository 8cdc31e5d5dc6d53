package pvtest

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSelect(t *testing.T) {
	all := []ID{{"config", 0}, {"local", 0}, {"local", 1}, {"local", 10}, {"logs", 2}}
	tests := []struct {
		sel  []string
		want []ID
		err  error
	}{
		{nil, all, nil},
		{[]string{"local"}, []ID{{"local", 0}, {"local", 1}, {"local", 10}}, nil},
		{[]string{"local:10"}, []ID{{"local", 10}}, nil},
		{[]string{"logs:2", "config"}, []ID{{"config", 0}, {"logs", 2}}, nil},
		{[]string{"local:1", "local"}, []ID{{"local", 0}, {"local", 1}, {"local", 10}}, nil},
		{[]string{"local:2"}, nil, ErrNoMatch},
		{[]string{"nope"}, nil, ErrNoMatch},
	}
	for _, tt := range tests {
		got, err := Select(all, tt.sel...)
		if !errors.Is(err, tt.err) {
			t.Errorf("Select(%q) error = %v, want %v", tt.sel, err, tt.err)
			continue
		}
		if tt.err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Select(%q) = %v, want %v", tt.sel, got, tt.want)
		}
	}
}

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in    string
		group string
		n     int
		bad   bool
	}{
		{"", "", -1, false},
		{"local", "local", -1, false},
		{"local:0", "local", 0, false},
		{"my-group_2:12", "my-group_2", 12, false},
		{"local:", "", 0, true},
		{"local:-1", "", 0, true},
		{"local:01", "", 0, true},
		{"local:x", "", 0, true},
		{"../x", "", 0, true},
		{":1", "", 0, true},
		{"common", "", 0, true},
	}
	for _, tt := range tests {
		g, n, err := ParseSelector(tt.in)
		if (err != nil) != tt.bad {
			t.Errorf("ParseSelector(%q) error = %v, want bad=%v", tt.in, err, tt.bad)
			continue
		}
		if !tt.bad && (g != tt.group || n != tt.n) {
			t.Errorf("ParseSelector(%q) = %q, %d, want %q, %d", tt.in, g, n, tt.group, tt.n)
		}
	}
}

func TestDiscoverAndNext(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"local/0", "local/2", "local/10", "logs/0", "common/0", "local/data", "local/03"} {
		os.MkdirAll(filepath.Join(root, p), 0o755)
		os.WriteFile(filepath.Join(root, p, "test.json"), []byte("{}"), 0o644)
	}
	os.MkdirAll(filepath.Join(root, "local", "5"), 0o755) // no test.json
	got, err := Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []ID{{"local", 0}, {"local", 2}, {"local", 10}, {"logs", 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Discover() = %v, want %v", got, want)
	}
	if n, err := Next(root, "local"); n != 1 || err != nil {
		t.Errorf("Next(local) = %d, %v, want 1", n, err)
	}
	if n, err := Next(root, "new"); n != 0 || err != nil {
		t.Errorf("Next(new) = %d, %v, want 0", n, err)
	}
	if _, err := Next(root, "a/b"); err == nil {
		t.Errorf("Next(a/b) error = nil, want bad group")
	}
	if ids, err := Discover(filepath.Join(root, "missing")); ids != nil || err != nil {
		t.Errorf("Discover(missing) = %v, %v, want nothing", ids, err)
	}
}

func TestIDRev(t *testing.T) {
	for _, tt := range []struct {
		id   ID
		want string
	}{{ID{"local", 0}, "locals/local_0"}, {ID{"my-group", 12}, "locals/my_group_12"}} {
		if got := tt.id.Rev(); got != tt.want {
			t.Errorf("%v.Rev() = %q, want %q", tt.id, got, tt.want)
		}
	}
}
