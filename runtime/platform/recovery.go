package platform

import (
	"math"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// maxDelay caps a computed backoff delay (factor^retries overflows fast).
const maxDelay = 24 * time.Hour

// Delay is the wait before retry number retries (1-based):
// retry_delay × backoff_factor^(retries−1). A factor ≤ 0 counts as 1.
func Delay(a *state.AutoRecovery, retries int) time.Duration {
	if a == nil || retries < 1 || a.RetryDelay <= 0 {
		return 0
	}
	f := a.BackoffFactor
	if f <= 0 {
		f = 1
	}
	secs := a.RetryDelay * math.Pow(f, float64(retries-1))
	if math.IsInf(secs, 0) || math.IsNaN(secs) || secs > maxDelay.Seconds() {
		return maxDelay
	}
	return time.Duration(secs * float64(time.Second))
}

// Recovers reports whether policy a restarts a platform after an exit.
// on-failure behaves like always (upstream does not look at exit codes).
func Recovers(a *state.AutoRecovery) bool {
	if a == nil {
		return false
	}
	switch a.Policy {
	case state.RecoveryAlways, state.RecoveryOnFailure, state.RecoveryUnlessStopped:
		return true
	}
	return false
}

// Exhaustion is what happens once max_retries is used up.
type Exhaustion int

// Exhaustion outcomes.
const (
	// ExhaustReboot fails the tick: the system reboots.
	ExhaustReboot Exhaustion = iota
	// ExhaustNever leaves the platform stopped.
	ExhaustNever
	// ExhaustWait waits the backoff_policy duration, then resets the counter.
	ExhaustWait
	// ExhaustRollback rolls the update back (always, while testing an update).
	ExhaustRollback
)

// OnExhausted returns the outcome of exhausted retries, and the wait for
// ExhaustWait.
func OnExhausted(a *state.AutoRecovery, updating bool) (Exhaustion, time.Duration) {
	if updating {
		return ExhaustRollback, 0
	}
	if a == nil {
		return ExhaustReboot, 0
	}
	switch a.BackoffPolicy {
	case state.BackoffNever:
		return ExhaustNever, 0
	case "", state.BackoffReboot:
		return ExhaustReboot, 0
	}
	if d, ok := a.BackoffWait(); ok {
		return ExhaustWait, d
	}
	return ExhaustReboot, 0
}
