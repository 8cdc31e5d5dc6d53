package config

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		want  []Pair
		nErrs int
	}{
		{"empty", "", nil, 0},
		{"simple", "PV_LOG_LEVEL=4\n", []Pair{{1, "PV_LOG_LEVEL", "4"}}, 0},
		{"split at first =", "storage.device=LABEL=pvroot\n", []Pair{{1, "storage.device", "LABEL=pvroot"}}, 0},
		{"no trim", " k = v \n", []Pair{{1, " k ", " v "}}, 0},
		{"crlf", "a=1\r\nb=2\r\n", []Pair{{1, "a", "1"}, {2, "b", "2"}}, 0},
		{"last line one blank stripped", "a=1\nb=2  ", []Pair{{1, "a", "1"}, {2, "b", "2 "}}, 0},
		{"comment is a key", "#PV_LOG_LEVEL=3\n", []Pair{{1, "#PV_LOG_LEVEL", "3"}}, 0},
		{"empty lines skipped", "\n\na=1\n\n", []Pair{{3, "a", "1"}}, 0},
		{"empty value", "a=\n", []Pair{{1, "a", ""}}, 0},
		{"duplicates kept in order", "a=1\na=2\n", []Pair{{1, "a", "1"}, {2, "a", "2"}}, 0},
		{"no equals", "garbage\na=1\n", []Pair{{2, "a", "1"}}, 1},
		{"empty key", "=v\n", nil, 1},
		{"nul byte", "a=\x00\nb=2\n", []Pair{{2, "b", "2"}}, 1},
		{"invalid utf8", "a=\xff\xfe\nb=2\n", []Pair{{2, "b", "2"}}, 1},
		{"binary junk", "\x7fELF\x02\x01\x01\x00\x00\x00\nb=2", []Pair{{2, "b", "2"}}, 1},
		{"huge line", "a=" + strings.Repeat("x", MaxLineLen+10) + "\nb=2\n", []Pair{{2, "b", "2"}}, 1},
		{"huge last line", "b=2\na=" + strings.Repeat("x", 3*MaxLineLen), []Pair{{1, "b", "2"}}, 1},
		{"max line ok", "a=" + strings.Repeat("x", MaxLineLen-2) + "\n", []Pair{{1, "a", strings.Repeat("x", MaxLineLen-2)}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := ParseFile(strings.NewReader(tc.in))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseFile(%.40q) = %v, want %v", tc.in, got, tc.want)
			}
			if len(errs) != tc.nErrs {
				t.Errorf("ParseFile(%.40q) errors = %v, want %d", tc.in, errs, tc.nErrs)
			}
			for _, e := range errs {
				if !errors.Is(e, ErrBadLine) {
					t.Errorf("error %v does not wrap ErrBadLine", e)
				}
			}
		})
	}
}

func FuzzParseConfigFile(f *testing.F) {
	for _, s := range []string{
		"PV_LOG_LEVEL=4\n", "a=b=c\r\n", "garbage", "\x00=\xff\n", "=\n\n=x",
		"log.level=5\nsysctl.vm.x=1\nPV_SYSCTL_KERNEL_CORE_PATTERN=|x --y\n",
		strings.Repeat("k", MaxLineLen+5) + "=1\nb=2",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pairs, _ := ParseFile(bytes.NewReader(data))
		c := New(nil)
		for _, p := range pairs {
			if p.Key == "" || strings.ContainsRune(p.Key, '=') || strings.ContainsAny(p.Key+p.Value, "\n\x00") {
				t.Fatalf("bad pair %+v", p)
			}
			if len(p.Key)+len(p.Value) > MaxLineLen {
				t.Fatalf("pair longer than MaxLineLen: %d", len(p.Key)+len(p.Value))
			}
			_ = c.Set(p.Key, p.Value, PVConf)
		}
		// Whatever was accepted must be readable and render.
		for _, e := range c.Entries() {
			if _, ok := Lookup(e.Key); !ok && !strings.HasPrefix(e.Key, sysctlPrefix) {
				t.Fatalf("entry %q is not a key", e.Key)
			}
		}
		_ = c.Legacy()
	})
}
