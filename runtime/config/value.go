package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrBadValue is returned for a value that does not parse as the key's type.
var ErrBadValue = errors.New("bad value")

// ParseBool accepts 1/0, true/false, yes/no and on/off (case-insensitive,
// surrounding blanks ignored).
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%w: %q is not a boolean (1/0/true/false/yes/no/on/off)", ErrBadValue, s)
}

// ParseInt parses a decimal integer that fits in 32 bits, the range of the
// upstream C ints.
func ParseInt(s string) (int, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not an integer", ErrBadValue, s)
	}
	return int(n), nil
}

// durationUnits are the accepted suffixes, longest first so "min" is tried
// before anything shorter.
var durationUnits = []struct {
	suffix string
	secs   int64
}{
	{"min", 60},
	{"s", 1},
	{"h", 3600},
	{"d", 86400},
}

// ParseDuration parses N (seconds), Ns, Nmin, Nh or Nd.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range durationUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = t[:len(t)-len(u.suffix)], u.secs
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || t == "" || t[0] == '+' {
		return 0, fmt.Errorf("%w: %q is not a duration (N, Ns, Nmin, Nh or Nd)", ErrBadValue, s)
	}
	maxSecs := int64(math.MaxInt64 / int64(time.Second))
	if n > maxSecs/mult {
		return 0, fmt.Errorf("%w: duration %q out of range", ErrBadValue, s)
	}
	return time.Duration(n*mult) * time.Second, nil
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{
	{"KB", 10}, {"MB", 20}, {"GB", 30}, {"TB", 40},
	{"K", 10}, {"M", 20}, {"G", 30}, {"T", 40},
	{"B", 0},
}

// ParseSize parses N, N followed by B, K, KB, M, MB, G, GB, T or TB
// (powers of 1024, case-insensitive), or N% (0-100). With percent true, n
// is the percentage; resolve it against a total with Percent.
func ParseSize(s string) (n int64, percent bool, err error) {
	t := strings.TrimSpace(s)
	if strings.HasSuffix(t, "%") {
		p, err := strconv.ParseInt(t[:len(t)-1], 10, 64)
		if err != nil || p < 0 || p > 100 || t[0] == '+' {
			return 0, false, fmt.Errorf("%w: %q is not a percentage (0-100%%)", ErrBadValue, s)
		}
		return p, true, nil
	}
	up := strings.ToUpper(t)
	shift := uint(0)
	for _, u := range sizeUnits {
		if strings.HasSuffix(up, u.suffix) {
			t, shift = t[:len(t)-len(u.suffix)], u.shift
			break
		}
	}
	v, perr := strconv.ParseInt(t, 10, 64)
	if perr != nil || v < 0 || t == "" || t[0] == '+' {
		return 0, false, fmt.Errorf("%w: %q is not a size (N[B|K|KB|M|MB|G|GB|T|TB] or N%%)", ErrBadValue, s)
	}
	if v > math.MaxInt64>>shift {
		return 0, false, fmt.Errorf("%w: size %q out of range", ErrBadValue, s)
	}
	return v << shift, false, nil
}

// Percent returns p percent of total.
func Percent(p, total int64) int64 {
	if total <= 0 || p <= 0 {
		return 0
	}
	if total > math.MaxInt64/100 {
		return total / 100 * p
	}
	return total * p / 100
}

// normalize checks v against the key's type and returns its canonical
// form: booleans "1"/"0", integers and durations (in seconds) in decimal,
// enums lower-case, sizes in bytes or "N%", strings unchanged.
func normalize(k *keyDef, v string) (string, error) {
	switch k.Type {
	case Bool:
		b, err := ParseBool(v)
		if err != nil {
			return "", err
		}
		if b {
			return "1", nil
		}
		return "0", nil
	case Int:
		n, err := ParseInt(v)
		if err != nil {
			return "", err
		}
		return strconv.Itoa(n), nil
	case Duration:
		d, err := ParseDuration(v)
		if err != nil {
			return "", err
		}
		return strconv.FormatInt(int64(d/time.Second), 10), nil
	case Enum:
		t := strings.ToLower(strings.TrimSpace(v))
		for _, e := range k.Enum {
			if t == e {
				return e, nil
			}
		}
		return "", fmt.Errorf("%w: %q is not one of %s", ErrBadValue, v, strings.Join(k.Enum, ", "))
	case Size:
		if strings.TrimSpace(v) == "" {
			return "", nil
		}
		n, pct, err := ParseSize(v)
		if err != nil {
			return "", err
		}
		if pct {
			return strconv.FormatInt(n, 10) + "%", nil
		}
		return strconv.FormatInt(n, 10), nil
	}
	return v, nil
}
