package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCanonicalGolden(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty object", ` { } `, `{}`},
		{"empty array", `[ ]`, `[]`},
		{"literals", `[true, false, null]`, `[true,false,null]`},
		{"sorted keys", `{"b":1,"a":2,"B":3,"#spec":4}`, `{"#spec":4,"B":3,"a":2,"b":1}`},
		{"code point order", `{"é":1,"z":2,"\u00e9a":3,"~":4}`, `{"z":2,"~":4,"é":1,"éa":3}`},
		{"prefix sorts first", `{"ab":1,"a":2,"a/b":3}`, `{"a":2,"a/b":3,"ab":1}`},
		{"nested", "{\n  \"o\": {\"y\": [1, {\"b\": 2, \"a\": 1}], \"x\": {}},\n  \"a\": []\n}", `{"a":[],"o":{"x":{},"y":[1,{"a":1,"b":2}]}}`},
		{"float", `1.5`, `1.5E0`},
		{"negative float", `-1.5`, `-1.5E0`},
		{"small float", `0.001`, `1.0E-3`},
		{"float with exp", `12.5e3`, `12500`},
		{"float big exp", `1.25E+30`, `1250000000000000000000000000000`},
		{"float neg exp", `125e-2`, `1.25E0`},
		{"float trailing zeros", `1.500`, `1.5E0`},
		{"tenth", `0.1`, `1.0E-1`},
		{"many digits", `3.14159265358979323846`, `3.14159265358979323846E0`},
		{"int", `42`, `42`},
		{"int as float", `2.0`, `2`},
		{"int with exponent", `1e2`, `100`},
		{"negative int", `-7`, `-7`},
		{"zero", `0`, `0`},
		{"negative zero", `-0`, `0`},
		{"negative zero float", `-0.0e5`, `0`},
		{"big int", `123456789012345678901234567890`, `123456789012345678901234567890`},
		{"big negative int", `-18446744073709551617`, `-18446744073709551617`},
		{"tiny", `1e-400`, `1.0E-400`},
		{"unicode raw", `"héllo ✓ 😀"`, `"héllo ✓ 😀"`},
		{"unicode escaped", `"\u00e9\u2713\ud83d\ude00"`, `"é✓😀"`},
		{"escapes", `"q\" b\\ s\/ \b\f\n\r\t"`, `"q\" b\\ s/ \b\f\n\r\t"`},
		{"control escape", `"\u0001\u001f\u007f"`, "\"\\u0001\\u001F\x7f\""},
		{"html not escaped", `"<a href=\"x\">&</a>"`, `"<a href=\"x\">&</a>"`},
		{"line separators raw", `"\u2028\u2029"`, "\"\u2028\u2029\""},
		{"lone surrogate", `"\ud800x"`, "\"\uFFFDx\""},
		{"bad surrogate pair", `"\ud800\u0041"`, "\"\uFFFDA\""},
		{"invalid utf8", "\"a\xffb\"", "\"a\uFFFDb\""},
		{"whitespace everywhere", " [ 1 , \"a\" ,\t{ \"k\" : null } ]\n", `[1,"a",{"k":null}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte(tt.in))
			if err != nil {
				t.Fatalf("Canonical(%q) error: %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
			}
			again, err := Canonical(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("Canonical(%q) = %q, %v, want it unchanged", got, again, err)
			}
		})
	}
}

func TestCanonicalErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{"empty", ``, ErrSyntax},
		{"spaces", `   `, ErrSyntax},
		{"trailing data", `{} {}`, ErrSyntax},
		{"trailing comma object", `{"a":1,}`, ErrSyntax},
		{"trailing comma array", `[1,]`, ErrSyntax},
		{"unquoted key", `{a:1}`, ErrSyntax},
		{"missing colon", `{"a" 1}`, ErrSyntax},
		{"leading zero", `01`, ErrSyntax},
		{"plus sign", `+1`, ErrSyntax},
		{"bare dot", `1.`, ErrSyntax},
		{"no exp digits", `1e`, ErrSyntax},
		{"hex", `0x10`, ErrSyntax},
		{"NaN", `NaN`, ErrSyntax},
		{"bad literal", `tru`, ErrSyntax},
		{"single quotes", `'a'`, ErrSyntax},
		{"raw control char", "\"a\nb\"", ErrSyntax},
		{"bad escape", `"\x"`, ErrSyntax},
		{"short unicode escape", `"\u12"`, ErrSyntax},
		{"unterminated string", `"abc`, ErrSyntax},
		{"unterminated array", `[1`, ErrSyntax},
		{"unterminated object", `{"a":1`, ErrSyntax},
		{"duplicate member", `{"a":1,"a":2}`, ErrDuplicate},
		{"duplicate nested member", `[{"x":{"k":1,"k":1}}]`, ErrDuplicate},
		{"duplicate after unescape", `{"a":1,"\u0061":2}`, ErrDuplicate},
		{"huge integer", `1e5000`, ErrSyntax},
		{"huge exponent", `1e99999999999999999999`, ErrSyntax},
		{"too deep", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Errorf("Canonical(%.40q) = %.40q, %v, want error %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCanonicalDeepButAllowed(t *testing.T) {
	in := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	got, err := Canonical([]byte(in))
	if err != nil || string(got) != in {
		t.Errorf("Canonical(depth %d) error %v, want the input back", maxDepth, err)
	}
}

// checkCanonical verifies the invariants of a successful Canonical call.
func checkCanonical(t *testing.T, in, out []byte) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("Canonical(%q) = %q, not valid JSON", in, out)
	}
	again, err := Canonical(out)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("Canonical(%q) = %q, %v, want it unchanged", out, again, err)
	}
	var a, b any
	if json.Unmarshal(in, &a) != nil {
		return // e.g. numbers beyond float64: encoding/json cannot compare
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("json.Unmarshal(%q) error %v after accepting the input", out, err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("Canonical(%q) = %q, which decodes to %#v, want %#v", in, out, b, a)
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `0`, `-0.0`, `1.5`, `1e-7`, `123456789012345678901234567890`,
		`{"b":[1,2,{"z":null,"a":true}],"a":"x"}`, `"\u00e9\ud83d\ude00\ud800"`,
		"\"\x01\"", `"\"\\\/\b\f\n\r\t"`, `{"a":1,"a":2}`, `[1,]`, `1e400`, `-1.0E+2`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonical(in)
		if err != nil {
			return
		}
		checkCanonical(t, in, out)
	})
}
