package pantavisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// containerFailer and runningReporter are the optional parts of an
// Updater the daemon uses when present.
type containerFailer interface{ ContainerFailed(error) Next }
type runningReporter interface{ Running() string }

// Transition makes rev the loaded revision without a reboot: every
// container of the old revision is stopped (also those the update did
// not change: the engine and host belong to one revision), then rev is
// loaded and the next WAIT tick starts its containers.
func (m *Containers) Transition(ctx context.Context, rev string, st *state.State) error {
	if err := m.Stop(ctx); err != nil {
		m.log.Warn("transition: stop", "err", err)
	}
	if err := m.Load(rev, st); err != nil {
		return fmt.Errorf("transition to %s: %w", rev, err)
	}
	m.notify()
	return nil
}

// GoalsReached is Engine.GoalsReached of the loaded revision.
func (m *Containers) GoalsReached() (bool, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.engine == nil {
		return true, nil
	}
	return m.engine.GoalsReached()
}

// Failures returns the container failures since SetUpdating(true).
func (m *Containers) Failures() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return errors.Join(m.failures...)
}

// Stable is Engine.Stable of the loaded revision.
func (m *Containers) Stable() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.engine == nil || m.engine.Stable()
}

// SetUpdating switches failures between rollback (an update is tested)
// and reboot, also for engines loaded later.
func (m *Containers) SetUpdating(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.updating = on
	if on {
		m.failures = nil
	}
	if m.engine != nil {
		m.engine.SetUpdating(on)
	}
}
