package platform

import (
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// DefaultGoalsTimeout is PV_UPDATER_GOALS_TIMEOUT's default, used for groups
// without a timeout.
const DefaultGoalsTimeout = 120 * time.Second

// Group is an ordered group of platforms.
type Group struct {
	Name          string
	Goal          Status
	RestartPolicy string
	Timeout       time.Duration
	Recovery      *state.AutoRecovery
	Members       []*Platform
}

// assign builds the ordered groups of st and puts each platform in one
// (spec §7 "Group assignment"): explicit group, else legacy runlevel; in
// runlevel mode (no groups in the state) the first unassigned platform in
// name order goes to "root" when root is empty and the others to
// "platform"; with explicit groups unassigned platforms go to the last
// group, with a warning.
func assign(st *state.State, defTimeout time.Duration, log *slog.Logger) ([]*Group, error) {
	defs := st.Groups()
	runlevel := defs == nil
	if runlevel {
		defs = state.DefaultGroups()
	}
	if len(defs) == 0 {
		return nil, fmt.Errorf("groups: none defined")
	}
	var groups []*Group
	byName := map[string]*Group{}
	for _, d := range defs {
		goal := Started
		if d.StatusGoal != "" {
			g, err := ParseGoal(d.StatusGoal)
			if err != nil {
				return nil, fmt.Errorf("group %q: %w", d.Name, err)
			}
			goal = g
		}
		g := &Group{Name: d.Name, Goal: goal, RestartPolicy: d.RestartPolicy, Timeout: d.Timeout, Recovery: d.AutoRecovery}
		if g.RestartPolicy == "" {
			g.RestartPolicy = state.RestartContainer
		}
		if g.Timeout <= 0 {
			g.Timeout = defTimeout
		}
		if _, dup := byName[d.Name]; dup {
			return nil, fmt.Errorf("group %q: defined twice", d.Name)
		}
		byName[d.Name] = g
		groups = append(groups, g)
	}
	plats := st.Platforms()
	sort.Slice(plats, func(i, j int) bool { return plats[i].Name < plats[j].Name })
	var unassigned []*state.Platform
	rootTaken := false
	type pair struct {
		p *state.Platform
		g *Group
	}
	var placed []pair
	for _, p := range plats {
		name := p.Group
		if name == "" {
			name = p.Runlevel
		}
		if name == "" {
			unassigned = append(unassigned, p)
			continue
		}
		g, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("%s: group %q: not defined", p.Key(), name)
		}
		if name == "root" {
			rootTaken = true
		}
		placed = append(placed, pair{p, g})
	}
	for i, p := range unassigned {
		var g *Group
		switch {
		case runlevel && i == 0 && !rootTaken && byName["root"] != nil:
			g = byName["root"]
		case runlevel && byName["platform"] != nil:
			g = byName["platform"]
		default:
			g = groups[len(groups)-1]
			if !runlevel {
				log.Warn("platform has no group, using the last one", "platform", p.Name, "group", g.Name)
			}
		}
		placed = append(placed, pair{p, g})
	}
	for _, pp := range placed {
		pp.g.Members = append(pp.g.Members, newPlatform(pp.p, pp.g))
	}
	for _, g := range groups {
		sort.Slice(g.Members, func(i, j int) bool { return g.Members[i].Name < g.Members[j].Name })
	}
	return groups, nil
}

// newPlatform applies the group's defaults to p: goal and restart policy
// when unset, auto_recovery all-or-nothing.
func newPlatform(p *state.Platform, g *Group) *Platform {
	pl := &Platform{Name: p.Name, Group: g.Name, Goal: g.Goal, RestartPolicy: g.RestartPolicy, Recovery: g.Recovery, Timeout: g.Timeout, status: Installed}
	if p.StatusGoal != "" {
		if goal, err := ParseGoal(p.StatusGoal); err == nil {
			pl.Goal = goal
		}
	}
	if p.RestartPolicy != "" {
		pl.RestartPolicy = p.RestartPolicy
	}
	if p.AutoRecovery != nil {
		pl.Recovery = p.AutoRecovery
	}
	return pl
}
