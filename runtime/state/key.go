package state

import (
	"fmt"
	"strings"
)

// Spec is the only state format this package accepts.
const Spec = "pantavisor-service-system@1"

// IsSha reports whether s is exactly 64 lowercase hexadecimal characters.
func IsSha(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ValidKey checks that k is usable as a path below a revision directory: not
// empty, relative, no empty, "." or ".." elements, no NUL and no backslash,
// and not under .pv/ or .pvr/, where the revision keeps its own metadata
// (progress, done marker, boot links, the state JSON itself). Errors wrap
// ErrBadKey.
func ValidKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("%w: empty", ErrBadKey)
	case k[0] == '/':
		return fmt.Errorf("%w: %q is absolute", ErrBadKey, k)
	case strings.IndexByte(k, 0) >= 0:
		return fmt.Errorf("%w: %q contains NUL", ErrBadKey, k)
	case strings.IndexByte(k, '\\') >= 0:
		return fmt.Errorf("%w: %q contains a backslash", ErrBadKey, k)
	}
	if first, _, _ := strings.Cut(k, "/"); first == ".pv" || first == ".pvr" {
		return fmt.Errorf("%w: %q is under %s/, which is reserved for revision metadata", ErrBadKey, k, first)
	}
	rest := k
	for {
		el, tail, more := strings.Cut(rest, "/")
		switch el {
		case "":
			return fmt.Errorf("%w: %q has an empty path element", ErrBadKey, k)
		case ".", "..":
			return fmt.Errorf("%w: %q has a %q path element", ErrBadKey, k, el)
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// Owner returns the container directory that owns a state path: the first
// path element, or the second one for "_config/<container>/…". Keys at the
// root of the state (device.json, groups.json, disks.json, "#spec") have no
// owner and return "". BSP files return "bsp" and signatures "_sigs".
//
// The owner is a directory name, which usually equals the platform name;
// use State.PlatformOwning to map a path to its Platform.
func Owner(path string) string {
	first, rest, ok := strings.Cut(path, "/")
	if !ok {
		return ""
	}
	if first == "_config" {
		second, _, _ := strings.Cut(rest, "/")
		return second
	}
	return first
}
