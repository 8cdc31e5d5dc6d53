package pantavisor

import "errors"

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
