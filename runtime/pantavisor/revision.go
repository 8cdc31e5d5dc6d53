package pantavisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Specs accepted in a state JSON's "#spec".
const (
	SpecSystem1       = "pantavisor-service-system@1"
	SpecMultiPlatform = "pantavisor-multi-platform@1"
)

// ErrBadState is returned for a state JSON that does not validate.
var ErrBadState = errors.New("state JSON has bad format")

// revision is the running revision as far as the daemon itself needs it:
// its name, raw JSON and its platforms with their roles. Containers are
// the platform manager's business (issue 4).
type revision struct {
	name      string
	raw       []byte
	platforms map[string][]string // platform name → roles
}

// parseRevision validates a state JSON: an object with an accepted #spec,
// clean relative keys and sha or inline JSON values. appengine accepts only
// the system1 spec.
func parseRevision(name string, data []byte, appengine bool) (*revision, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	var spec string
	if err := json.Unmarshal(m["#spec"], &spec); err != nil {
		return nil, fmt.Errorf("%w: #spec: missing or not a string", ErrBadState)
	}
	switch {
	case spec == SpecSystem1:
	case spec == SpecMultiPlatform && !appengine:
	default:
		return nil, fmt.Errorf("%w: #spec: unsupported %q", ErrBadState, spec)
	}
	rev := &revision{name: name, raw: data, platforms: map[string][]string{}}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "#spec" {
			continue
		}
		if err := validKey(k); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadState, err)
		}
		v := m[k]
		var sha string
		if json.Unmarshal(v, &sha) == nil {
			if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
				return nil, fmt.Errorf("%w: %s: value is neither a sha256 nor inline JSON", ErrBadState, k)
			}
			continue
		}
		dir, file, ok := strings.Cut(k, "/")
		if !ok || file != "run.json" {
			continue
		}
		var run struct {
			Name  string          `json:"name"`
			Roles json.RawMessage `json:"roles"`
		}
		if err := json.Unmarshal(v, &run); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadState, k, err)
		}
		var roles []string
		if len(run.Roles) > 0 && string(run.Roles) != "null" {
			if err := json.Unmarshal(run.Roles, &roles); err != nil {
				var one string
				if json.Unmarshal(run.Roles, &one) != nil {
					return nil, fmt.Errorf("%w: %s: roles: want an array of strings", ErrBadState, k)
				}
				roles = []string{one}
			}
		}
		if roles == nil {
			roles = []string{}
		}
		rev.platforms[dir] = roles
	}
	return rev, nil
}

// validKey rejects empty, absolute and dot-element keys, NUL and backslash.
func validKey(k string) error {
	if k == "" || strings.HasPrefix(k, "/") || strings.ContainsAny(k, "\x00\\") {
		return fmt.Errorf("key %q: empty, absolute or with NUL/backslash", k)
	}
	for _, e := range strings.Split(k, "/") {
		if e == "" || e == "." || e == ".." {
			return fmt.Errorf("key %q: empty or dot path element", k)
		}
	}
	return nil
}

// Caller implements ctrl.Platforms. Only a "mgmt" role grants mgmt: the
// docs say a container without roles gets the unprivileged socket
// (upstream defaults a missing roles key to mgmt, spec §5 ⚠; not copied).
func (r *revision) Caller(name string) (known, mgmt bool) {
	roles, ok := r.platforms[name]
	if !ok {
		return false, false
	}
	for _, ro := range roles {
		if ro == "mgmt" {
			return true, true
		}
	}
	return true, false
}
