package pantavisor

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Specs accepted in a state JSON's "#spec".
const (
	SpecSystem1       = "pantavisor-service-system@1"
	SpecMultiPlatform = "pantavisor-multi-platform@1"
)

// ErrBadState is returned for a state JSON that does not validate.
var ErrBadState = errors.New("state JSON has bad format")

// revision is the running revision as far as the daemon itself needs it:
// its name, parsed state and which platforms have the mgmt role.
type revision struct {
	name  string
	state *state.State
	mgmt  map[string]bool // platform name → mgmt role
}

// parseRevision parses and validates a state JSON (runtime/state);
// appengine accepts only the system1 spec (spec §10).
func parseRevision(name string, data []byte, appengine bool) (*revision, error) {
	var head struct {
		Spec string `json:"#spec"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if appengine && head.Spec != SpecSystem1 {
		return nil, fmt.Errorf("%w: #spec: %q not supported in appengine mode", ErrBadState, head.Spec)
	}
	st, err := state.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	rev := &revision{name: name, state: st, mgmt: map[string]bool{}}
	for _, p := range st.Platforms() {
		mgmt := false
		for _, r := range p.Roles {
			if r == "mgmt" {
				mgmt = true
			}
		}
		rev.mgmt[p.Name] = mgmt
		if p.Dir != "" && p.Dir != p.Name {
			if _, ok := rev.mgmt[p.Dir]; !ok {
				rev.mgmt[p.Dir] = mgmt
			}
		}
	}
	return rev, nil
}

// Caller implements ctrl.Platforms. Only a "mgmt" role grants mgmt: the
// docs say a container without roles gets the unprivileged socket
// (upstream defaults a missing roles key to mgmt, spec §5 ⚠; not copied).
func (r *revision) Caller(name string) (known, mgmt bool) {
	m, ok := r.mgmt[name]
	return ok, m
}
