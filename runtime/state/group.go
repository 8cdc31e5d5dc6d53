package state

// Resolved is a platform's effective group settings: its group, and its
// own status goal, restart policy and auto-recovery or, when it does not
// set them, the group's. AutoRecovery is inherited all-or-nothing and is
// nil when neither the platform nor its group defines one.
type Resolved struct {
	Group         Group
	StatusGoal    string
	RestartPolicy string
	AutoRecovery  *AutoRecovery
}

// EffectiveGroups returns the groups in start order: Groups(), or
// DefaultGroups() when the state defines none.
func (s *State) EffectiveGroups() []Group {
	if s.groups != nil {
		return s.groups
	}
	return DefaultGroups()
}

// Resolve returns the effective group settings of p, a platform of s.
func (s *State) Resolve(p *Platform) Resolved {
	var r Resolved
	name := s.assign[p.Name]
	for _, g := range s.EffectiveGroups() {
		if g.Name == name {
			r.Group = g
			break
		}
	}
	r.StatusGoal, r.RestartPolicy, r.AutoRecovery = r.Group.StatusGoal, r.Group.RestartPolicy, r.Group.AutoRecovery
	if p.StatusGoal != "" {
		r.StatusGoal = p.StatusGoal
	}
	if p.RestartPolicy != "" {
		r.RestartPolicy = p.RestartPolicy
	}
	if p.AutoRecovery != nil {
		r.AutoRecovery = p.AutoRecovery
	}
	return r
}

// assignGroups links every platform to a group: its "group", else its
// legacy "runlevel". With the default groups an unlinked platform goes to
// "platform", except the first one by name, which goes to "root" when no
// platform is linked to "root". With explicit groups an unlinked
// platform is an error, as the docs promise (upstream silently uses the
// last group).
func (s *State) assignGroups() error {
	groups := s.EffectiveGroups()
	known := func(n string) bool {
		for _, g := range groups {
			if g.Name == n {
				return true
			}
		}
		return false
	}
	s.assign = make(map[string]string, len(s.platforms))
	hasRoot := false
	for _, p := range s.platforms {
		field, name := "group", p.Group
		if name == "" {
			field, name = "runlevel", p.Runlevel
		}
		if name == "" {
			if s.groups != nil {
				return &Error{Key: p.Key(), Err: invalid(top("group"), "missing: every platform needs a group when groups are defined in the state")}
			}
			continue
		}
		if !known(name) {
			return &Error{Key: p.Key(), Err: invalid(top(field), "unknown group %q", name)}
		}
		s.assign[p.Name] = name
		hasRoot = hasRoot || name == "root"
	}
	for _, p := range s.platforms { // sorted by name
		if _, ok := s.assign[p.Name]; ok {
			continue
		}
		if !hasRoot {
			s.assign[p.Name] = "root"
			hasRoot = true
			continue
		}
		s.assign[p.Name] = "platform"
	}
	return nil
}

// GroupName returns the name of the group p is assigned to.
func (s *State) GroupName(p *Platform) string { return s.assign[p.Name] }
