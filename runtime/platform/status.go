// Package platform holds the lifecycle model of Pantavisor platforms
// (containers): their statuses and goals, group ordering, goal timeouts,
// restart policy and auto-recovery with backoff. It is pure Go with an
// injectable clock: the daemon feeds it events (mounted, started, exited,
// ready signal, user commands) and executes the actions it returns (mount,
// start, stop, unmount, reboot, rollback) with runtime/volume and
// runtime/platform/lxc.
//
// Usage:
//
//	e, err := platform.New(st, platform.Options{Clock: clk, Updating: true})
//	for {
//		for _, a := range e.Tick() { … do a, then report e.Mounted / e.Started / … }
//	}
//
// Group ordering lives here too (runtime/group does not exist yet).
package platform

import (
	"fmt"
	"time"
)

// Status is a platform's (or group's, or revision's) lifecycle status.
type Status int

// Statuses in upstream order; a group's status is the minimum over its
// platforms that have not reached their goal.
const (
	None Status = iota
	Installed
	Mounted
	Blocked
	Starting
	Started
	Ready
	Recovering
	Stopping
	Stopped
)

var statusNames = [...]string{"NONE", "INSTALLED", "MOUNTED", "BLOCKED", "STARTING", "STARTED", "READY", "RECOVERING", "STOPPING", "STOPPED"}

// String returns the upstream word (GET /containers "status").
func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return statusNames[s]
}

// ParseStatus is the inverse of String.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), nil
		}
	}
	return None, fmt.Errorf("unknown status %q", s)
}

// ParseGoal parses a status_goal: MOUNTED, STARTED or READY.
func ParseGoal(s string) (Status, error) {
	switch s {
	case "MOUNTED":
		return Mounted, nil
	case "STARTED":
		return Started, nil
	case "READY":
		return Ready, nil
	}
	return None, fmt.Errorf("status_goal %q: want MOUNTED, STARTED or READY", s)
}

// Clock tells the time; tests use a fake one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// transitions lists, for each status, the statuses it may move to. Every
// status change goes through Platform.set, which checks this table.
var transitions = map[Status][]Status{
	None:       {Installed},
	Installed:  {Mounted, Blocked, Stopped, Stopping},
	Blocked:    {Installed, Mounted, Stopped, Stopping},
	Mounted:    {Starting, Stopping, Stopped},
	Starting:   {Started, Stopping, Stopped},
	Started:    {Ready, Stopping, Stopped},
	Ready:      {Stopping, Stopped},
	Recovering: {Installed, Stopped},
	Stopping:   {Stopped},
	Stopped:    {Installed, Recovering},
}

func allowed(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}
