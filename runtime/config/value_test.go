package config

import (
	"errors"
	"testing"
	"time"
)

func TestParseBool(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
		ok   bool
	}{
		{"1", true, true}, {"0", false, true},
		{"true", true, true}, {"FALSE", false, true},
		{"yes", true, true}, {"no", false, true},
		{"on", true, true}, {"Off", false, true},
		{" 1 ", true, true},
		{"", false, false}, {"2", false, false}, {"y", false, false}, {"enable", false, false},
	} {
		got, err := ParseBool(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseBool(%q) = %v, %v, want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadValue) {
			t.Errorf("ParseBool(%q) error %v does not wrap ErrBadValue", tc.in, err)
		}
	}
}

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"-1", -1, true}, {" 7", 7, true},
		{"", 0, false}, {"x", 0, false}, {"1.5", 0, false}, {"99999999999", 0, false},
	} {
		got, err := ParseInt(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseInt(%q) = %v, %v, want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"25", 25 * time.Second, true},
		{"25s", 25 * time.Second, true},
		{"2min", 2 * time.Minute, true},
		{"3h", 3 * time.Hour, true},
		{"1d", 24 * time.Hour, true},
		{" 5s ", 5 * time.Second, true},
		{"", 0, false}, {"s", 0, false}, {"-1", 0, false}, {"+1", 0, false},
		{"5m", 0, false}, {"1.5h", 0, false}, {"5 s", 0, false}, {"10w", 0, false},
		{"99999999999999999d", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v, want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		percent bool
		ok      bool
	}{
		{"0", 0, false, true},
		{"2097152", 2097152, false, true},
		{"10B", 10, false, true},
		{"1K", 1024, false, true}, {"1KB", 1024, false, true}, {"1kb", 1024, false, true},
		{"2M", 2 << 20, false, true}, {"2MB", 2 << 20, false, true},
		{"3G", 3 << 30, false, true}, {"3GB", 3 << 30, false, true},
		{"1T", 1 << 40, false, true}, {"1TB", 1 << 40, false, true},
		{"10%", 10, true, true}, {"100%", 100, true, true}, {"0%", 0, true, true},
		{"", 0, false, false}, {"K", 0, false, false}, {"101%", 0, false, false},
		{"-1", 0, false, false}, {"1.5M", 0, false, false}, {"1X", 0, false, false},
		{"%", 0, false, false}, {"99999999999T", 0, false, false},
	} {
		got, pct, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want || pct != tc.percent {
			t.Errorf("ParseSize(%q) = %v, %v, %v, want %v, %v ok=%v", tc.in, got, pct, err, tc.want, tc.percent, tc.ok)
		}
	}
	if got, want := Percent(10, 1000), int64(100); got != want {
		t.Errorf("Percent(10, 1000) = %d, want %d", got, want)
	}
}

func TestNormalize(t *testing.T) {
	enum := &keyDef{Name: "E", Type: Enum, Enum: []string{"a", "b"}}
	for _, tc := range []struct {
		k    *keyDef
		in   string
		want string
		ok   bool
	}{
		{&keyDef{Type: Bool}, "yes", "1", true},
		{&keyDef{Type: Bool}, "off", "0", true},
		{&keyDef{Type: Int}, " 12", "12", true},
		{&keyDef{Type: Duration}, "2min", "120", true},
		{&keyDef{Type: Size}, "1K", "1024", true},
		{&keyDef{Type: Size}, "5%", "5%", true},
		{&keyDef{Type: Size}, "", "", true},
		{&keyDef{Type: String}, " keep spaces ", " keep spaces ", true},
		{enum, "B", "b", true},
		{enum, "c", "", false},
		{&keyDef{Type: Int}, "x", "", false},
	} {
		got, err := normalize(tc.k, tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("normalize(%v, %q) = %q, %v, want %q ok=%v", tc.k.Type, tc.in, got, err, tc.want, tc.ok)
		}
	}
}
