package pantavisor

import "errors"

// GoalsReached is Engine.GoalsReached of the loaded revision.
func (m *Containers) GoalsReached() (ok bool, missing []string) {
	ok = true
	m.call(func() {
		if m.engine != nil {
			ok, missing = m.engine.GoalsReached()
		}
	})
	return ok, missing
}

// Failures returns the container failures since SetUpdating(true).
func (m *Containers) Failures() error {
	var err error
	m.call(func() { err = errors.Join(m.failures...) })
	return err
}

// Stable is Engine.Stable of the loaded revision.
func (m *Containers) Stable() bool {
	stable := true
	m.call(func() { stable = m.engine == nil || m.engine.Stable() })
	return stable
}

// SetUpdating switches failures between rollback (an update is tested)
// and reboot, also for engines loaded later.
func (m *Containers) SetUpdating(on bool) {
	m.call(func() { m.setUpdating(on) })
}

func (m *Containers) setUpdating(on bool) {
	m.updating = on
	if on {
		m.failures = nil
	}
	if m.engine != nil {
		m.engine.SetUpdating(on)
	}
}
