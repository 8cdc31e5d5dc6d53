package lxc

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestInitArgv(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  error
	}{
		{"/sbin/init", nil, nil},
		{"/bin/sleep 1", nil, nil},
		{`/bin/sh "-c" "echo hi; exec sleep 9"`, []string{"/bin/sh", "-c", "echo hi; exec sleep 9"}, nil},
		{`nginx "-g" "daemon off;"`, []string{"nginx", "-g", "daemon off;"}, nil},
		{`/bin/x ""`, []string{"/bin/x", ""}, nil},
		{`/bin/x  "a b"  "c"`, []string{"/bin/x", "a b", "c"}, nil},
		{`/bin/x "a`, nil, ErrInitCmd},
	} {
		got, err := InitArgv(tc.in)
		if !errors.Is(err, tc.err) || !slices.Equal(got, tc.want) {
			t.Errorf("InitArgv(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzInitArgv: pvr's quoting of words without quotes round-trips.
func FuzzInitArgv(f *testing.F) {
	f.Add("/bin/sh", "-c", "echo a b")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		words := []string{a, b, c}
		for _, w := range words {
			if w == "" || strings.ContainsAny(w, "\" \t") && w == a || strings.Contains(w, `"`) {
				return
			}
		}
		cmd := a + ` "` + b + `" "` + c + `"`
		got, err := InitArgv(cmd)
		if err != nil || !slices.Equal(got, words) {
			t.Fatalf("InitArgv(%q) = %q, %v; want %q", cmd, got, err, words)
		}
	})
}
