package pvtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Spec is the only supported test.json "#spec".
const Spec = "pv-test@1"

// ErrBadTest is wrapped by every test.json validation error.
var ErrBadTest = errors.New("bad test.json")

// Test is a parsed test.json.
type Test struct {
	Spec        string
	Description string
	Setup       Setup
	// Script is the test-script path, relative to the test directory.
	Script string
	// Skip is set when "skip" is "true"; the test still runs when picked
	// individually.
	Skip bool
}

// Setup is the initial Pantavisor setup of a test.
type Setup struct {
	// Cmdline is appended to the kernel command line of every boot.
	Cmdline string
	// Config is a pantavisor.config file (relative to the test dir) whose
	// lines are added to the App Engine config.
	Config string
	// PVS is a tarball of secureboot certificates and keys.
	PVS string
	// Containers of the initial revision.
	Containers Containers
	// ReadyScript runs before waiting for the initial revision to be ready.
	ReadyScript string
	// Factory (pvtest extension, "factory": "true") installs the containers
	// in the factory revision 0 instead of upstream's locals/<id> + LOCAL_RUN.
	Factory bool
	// StorageSize (pvtest extension, "storage-size": "32M") makes the
	// instance's storage a tmpfs of that size (k, M or G suffix): a small
	// disk for the tests of a full storage.
	StorageSize string
	// NetNS (pvtest extension, "netns": "true") runs the instance in a
	// network namespace of its own (only lo, up) with a resolv.conf of its
	// own bound on /etc/resolv.conf: a test may give it interfaces (veth)
	// and a network container may configure them without touching the
	// host's.
	NetNS bool
}

// Containers lists the packages of the initial revision.
type Containers struct {
	// Control is the mgmt container the helpers use ("" = none).
	Control string
	// Tarballs are pvr export tarballs, paths relative to the test dir, or
	// framework-built fixtures "builtin:<kind>[:<name>]".
	Tarballs []string
	// URLs are pvr clone URLs (need the network; not fetched).
	URLs []string
}

// rawTest mirrors the JSON; fields are json.RawMessage where upstream
// allowed several shapes ("skip": "true" or true).
type rawTest struct {
	Spec        *string         `json:"#spec"`
	Description string          `json:"description"`
	Setup       *rawSetup       `json:"setup"`
	Script      string          `json:"test-script"`
	Skip        json.RawMessage `json:"skip"`
}

type rawSetup struct {
	Cmdline     string          `json:"cmdline"`
	Config      string          `json:"pantavisor.config"`
	PVS         string          `json:"pvs"`
	ReadyScript string          `json:"ready-script"`
	Factory     json.RawMessage `json:"factory"`
	StorageSize string          `json:"storage-size"`
	NetNS       json.RawMessage `json:"netns"`
	Containers  *struct {
		Control  string   `json:"control"`
		Tarballs []string `json:"tarballs"`
		URLs     []string `json:"urls"`
	} `json:"containers"`
}

func bad(field, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadTest, field, fmt.Sprintf(format, a...))
}

// Parse reads and validates a test.json. Unknown keys are rejected so a
// typo does not silently change what a test does.
func Parse(data []byte) (*Test, error) {
	var r rawTest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBadTest)
	}
	if r.Spec == nil {
		return nil, bad("#spec", "missing (want %q)", Spec)
	}
	if *r.Spec != Spec {
		return nil, bad("#spec", "%q is not supported (want %q)", *r.Spec, Spec)
	}
	t := &Test{Spec: *r.Spec, Description: r.Description, Script: r.Script}
	if t.Script == "" {
		return nil, bad("test-script", "missing")
	}
	if err := relPath("test-script", t.Script); err != nil {
		return nil, err
	}
	skip, err := parseBool("skip", r.Skip)
	if err != nil {
		return nil, err
	}
	t.Skip = skip
	if s := r.Setup; s != nil {
		t.Setup = Setup{Cmdline: s.Cmdline, Config: s.Config, PVS: s.PVS, ReadyScript: s.ReadyScript}
		f, err := parseBool("setup.factory", s.Factory)
		if err != nil {
			return nil, err
		}
		t.Setup.Factory = f
		if z := s.StorageSize; z != "" {
			n := strings.TrimRight(z, "kMG")
			if len(z)-len(n) > 1 || n == "" || strings.Trim(n, "0123456789") != "" || strings.Trim(n, "0") == "" {
				return nil, bad("setup.storage-size", "%q is not a size (32M, 512k, 1G)", z)
			}
			t.Setup.StorageSize = z
		}
		if t.Setup.NetNS, err = parseBool("setup.netns", s.NetNS); err != nil {
			return nil, err
		}
		for _, f := range []struct{ name, val string }{
			{"setup.pantavisor.config", s.Config}, {"setup.pvs", s.PVS}, {"setup.ready-script", s.ReadyScript},
		} {
			if f.val != "" {
				if err := relPath(f.name, f.val); err != nil {
					return nil, err
				}
			}
		}
		if strings.ContainsAny(s.Cmdline, "\x00\n") {
			return nil, bad("setup.cmdline", "must be one line")
		}
		if c := s.Containers; c != nil {
			t.Setup.Containers = Containers{Control: c.Control, Tarballs: c.Tarballs, URLs: c.URLs}
			for i, tb := range c.Tarballs {
				field := fmt.Sprintf("setup.containers.tarballs[%d]", i)
				if k, ok := strings.CutPrefix(tb, "builtin:"); ok {
					if _, _, err := ParseBuiltin(k); err != nil {
						return nil, bad(field, "%v", err)
					}
					continue
				}
				if err := relPath(field, tb); err != nil {
					return nil, err
				}
			}
			for i, u := range c.URLs {
				if u == "" {
					return nil, bad(fmt.Sprintf("setup.containers.urls[%d]", i), "empty")
				}
			}
			if c.Control != "" && len(c.Tarballs)+len(c.URLs) == 0 {
				return nil, bad("setup.containers.control", "%q is not provided by any tarball or url", c.Control)
			}
		}
	}
	return t, nil
}

// parseBool accepts "true"/"false" (upstream's style) and JSON booleans.
func parseBool(field string, raw json.RawMessage) (bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return false, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "true":
			return true, nil
		case "false", "":
			return false, nil
		}
	}
	return false, bad(field, "%s is not \"true\" or \"false\"", raw)
}

// relPath accepts paths relative to the test dir; ".." may climb to shared
// files (../../common/…) but absolute paths and NUL are refused.
func relPath(field, p string) error {
	switch {
	case strings.ContainsRune(p, 0):
		return bad(field, "contains NUL")
	case path.IsAbs(p):
		return bad(field, "%q must be relative to the test directory", p)
	case strings.Contains(p, "\\"):
		return bad(field, "%q contains a backslash", p)
	}
	return nil
}
