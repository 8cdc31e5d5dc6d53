package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParseRunArgs(t *testing.T) {
	tests := []struct {
		args []string
		want runFlags
		bad  bool
	}{
		{nil, runFlags{jobs: 1}, false},
		{[]string{"local:0", "-i", "-m"}, runFlags{selectors: []string{"local:0"}, interactive: true, manual: true, jobs: 1}, false},
		{[]string{"-o", "local", "logs:2"}, runFlags{selectors: []string{"local", "logs:2"}, overwrite: true, jobs: 1}, false},
		{[]string{"-j", "3", "-v", "-k"}, runFlags{jobs: 3, verbose: true, keep: true}, false},
		{[]string{"-i", "-j", "3", "a:1"}, runFlags{selectors: []string{"a:1"}, interactive: true, jobs: 1}, false},
		{[]string{"-package", "/p"}, runFlags{jobs: 1, pkg: "/p"}, false},
		{[]string{"-j"}, runFlags{}, true},
		{[]string{"-j", "0"}, runFlags{}, true},
		{[]string{"-x"}, runFlags{}, true},
	}
	for _, tt := range tests {
		got, err := parseRunArgs(tt.args)
		if (err != nil) != tt.bad {
			t.Errorf("parseRunArgs(%q) error = %v, want bad=%v", tt.args, err, tt.bad)
			continue
		}
		if !tt.bad && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseRunArgs(%q) = %+v, want %+v", tt.args, got, tt.want)
		}
	}
}

func TestJSONCommand(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"json", "[name=b]/v"}, strings.NewReader(`[{"name":"a","v":1},{"name":"b","v":"x"}]`), &out, &out)
	if err != nil || out.String() != "x\n" {
		t.Errorf("pvtest json = %q, %v, want x", out.String(), err)
	}
	if err := run(t.Context(), []string{"bogus"}, nil, &out, &out); err == nil {
		t.Errorf("pvtest bogus error = nil")
	}
}
