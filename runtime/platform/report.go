package platform

import (
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Info is a platform's state as GET /containers shows it.
type Info struct {
	Name, Group   string
	Status, Goal  Status
	RestartPolicy string
	Pid           int
	Retries       int
	UserStopped   bool
	Stable        bool
	// AutoRecovery is the effective policy (own or inherited), nil if none.
	AutoRecovery *state.AutoRecovery
	// RecoverPending is the time left before a RECOVERING platform retries.
	RecoverPending time.Duration
	// Missing are the required xconnect services no platform exports
	// ("<name> (<type>)"): the platform stays BLOCKED.
	Missing []string
}

// Info returns the state of name.
func (e *Engine) Info(name string) (Info, error) {
	p, err := e.get(name)
	if err != nil {
		return Info{}, err
	}
	return e.info(p, e.clock.Now()), nil
}

func (e *Engine) info(p *Platform, now time.Time) Info {
	i := Info{Name: p.Name, Group: p.Group, Status: p.status, Goal: p.Goal, RestartPolicy: p.RestartPolicy,
		Pid: p.pid, Retries: p.retries, UserStopped: p.userStopped, Stable: p.stable(now), AutoRecovery: p.Recovery, Missing: p.missing}
	if p.status == Recovering && p.recoverAt.After(now) {
		i.RecoverPending = p.recoverAt.Sub(now)
	}
	return i
}

// Platforms returns every platform, in group order then name order.
func (e *Engine) Platforms() []Info {
	now := e.clock.Now()
	var out []Info
	for _, g := range e.groups {
		for _, p := range g.Members {
			out = append(out, e.info(p, now))
		}
	}
	return out
}

// stable reports whether p survived stable_timeout since reaching its goal
// (always true without a stable_timeout).
func (p *Platform) stable(now time.Time) bool {
	if p.Recovery == nil || p.Recovery.StableTimeout <= 0 {
		return true
	}
	return !p.goalAt.IsZero() && now.Sub(p.goalAt) >= p.Recovery.StableTimeout
}

// Stable reports whether every platform with a stable_timeout has proven
// stable; while testing an update the commit waits for it.
func (e *Engine) Stable() bool {
	now := e.clock.Now()
	for _, p := range e.byName {
		if !p.stable(now) {
			return false
		}
	}
	return true
}

// minStatus is the group/revision status rule: the lowest status among the
// platforms that have not reached their goal, READY when all have.
func minStatus(ps []*Platform) Status {
	st := Ready
	found := false
	for _, p := range ps {
		if p.achieved() {
			continue
		}
		if !found || p.status < st {
			st, found = p.status, true
		}
	}
	return st
}

// GroupStatus returns the status of group name (NONE if unknown).
func (e *Engine) GroupStatus(name string) Status {
	for _, g := range e.groups {
		if g.Name == name {
			return minStatus(g.Members)
		}
	}
	return None
}

// Status returns the revision status (devmeta pantavisor.status).
func (e *Engine) Status() Status {
	var all []*Platform
	for _, g := range e.groups {
		all = append(all, g.Members...)
	}
	return minStatus(all)
}

// GoalsReached reports whether every group reached its goals (a timed-out
// goal counts when not updating, as the next group is unlocked anyway).
func (e *Engine) GoalsReached() (reached bool, timedOut []string) {
	now := e.clock.Now()
	reached = true
	for _, g := range e.groups {
		for _, p := range g.Members {
			if p.achieved() {
				continue
			}
			if p.timedOut(now) {
				timedOut = append(timedOut, p.Name)
				continue
			}
			reached = false
		}
	}
	return reached, timedOut
}
