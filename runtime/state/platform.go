package state

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parsePlatform reads the run.json at key dir+"/run.json".
func parsePlatform(dir string, doc []byte, w warner) (*Platform, error) {
	p := &Platform{Dir: dir, Type: "lxc", AutoModFw: true}
	hasName := false
	for it := members(doc); it.next(); {
		m := it.cur
		var err error
		switch m.name {
		case "name":
			p.Name, err = stringField(top(m.name), m.val)
			if err == nil {
				err = validPlatformName(top(m.name), p.Name)
			}
			hasName = true
		case "type":
			p.Type, err = stringField(top(m.name), m.val)
			if err == nil && p.Type != "lxc" {
				err = invalid(top(m.name), "unsupported platform type %q (want \"lxc\")", p.Type)
			}
		case "runlevel":
			p.Runlevel, err = stringField(top(m.name), m.val)
		case "automodfw":
			p.AutoModFw, err = parseAutoModFw(top(m.name), m.val)
		case "group":
			p.Group, err = stringField(top(m.name), m.val)
		case "restart_policy":
			p.RestartPolicy, err = restartPolicy(top(m.name), m.val)
		case "status_goal":
			p.StatusGoal, err = statusGoal(top(m.name), m.val)
		case "roles":
			err = p.parseRoles(top(m.name), m.val)
		case "auto_recovery":
			p.AutoRecovery, err = parseAutoRecovery(top(m.name), m.val, w)
		case "network":
			p.Network, err = parseNetwork(top(m.name), m.val)
		case "config":
			p.Config, err = stringField(top(m.name), m.val)
		case "share":
			p.Share = m.val
		case "root-volume":
			p.RootVolume, err = stringField(top(m.name), m.val)
		case "volumes":
			p.Volumes, err = stringArray(top(m.name), m.val)
		case "logs":
			p.Logs, err = parseLogs(top(m.name), m.val)
		case "storage":
			p.Storage, err = parseStorage(top(m.name), m.val)
		case "drivers":
			p.Drivers, err = parseDriverRefs(top(m.name), m.val)
		case "services":
			p.Services, err = parseServices(top(m.name), m.val)
		case "exports":
			if _, ok := asArray(m.val); !ok {
				err = invalid(top(m.name), "must be an array")
			}
			p.Exports = true
		case "dev-log":
			var b bool
			var ok bool
			if b, ok = asBool(m.val); !ok {
				err = invalid(top(m.name), "must be true or false")
			}
			p.DevLog = &b
		case "exec":
			p.Exec, err = stringField(top(m.name), m.val)
		case "#spec":
		default:
			// Unknown keys are tolerated for forward compatibility.
			w.add(top(m.name), "unknown key ignored")
		}
		if err != nil {
			return nil, err
		}
	}
	if !hasName {
		return nil, invalid(top("name"), "missing (every run.json needs a name)")
	}
	// The directory names the platform to the control socket too (a caller
	// whose cgroup has its name), so it obeys the same rules.
	if p.Name != dir {
		if err := validPlatformName(top("directory"), dir); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ReservedPrefix starts the names the daemon keeps for itself: "_pv_" is
// the control socket's name for the host (pantavisor and its daemons), so
// a platform named so would be taken for the host (issue 11, defect 2).
const ReservedPrefix = "_pv"

// maxPlatformName is NAME_MAX: the name is a cgroup directory and an LXC
// container directory.
const maxPlatformName = 255

// validPlatformName checks a platform name: a valid name (validName) that
// is also a cgroup directory the control socket can read back from
// /proc/<pid>/cgroup without ambiguity, and not reserved for the host.
func validPlatformName(field fp, name string) error {
	if err := validName(field, name); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(name, ReservedPrefix):
		return invalid(field, "%q is reserved: names starting with %q belong to pantavisor (%q is the host's caller name)", name, ReservedPrefix, ReservedPrefix+"_")
	case len(name) > maxPlatformName:
		return invalid(field, "%q is longer than %d bytes (a cgroup directory name)", name[:16]+"…", maxPlatformName)
	}
	for _, r := range name {
		// /proc/<pid>/cgroup is a line per hierarchy: a newline in the
		// name could forge a line, other controls only confuse logs.
		if r < 0x20 || r == 0x7f {
			return invalid(field, "%q contains a control character", name)
		}
	}
	return nil
}

// validName checks that a platform or group name is usable as a single
// path element and an LXC container name.
func validName(field fp, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00\\") {
		return invalid(field, "%q is not a valid name (non-empty, no '/', '\\', NUL, '.' or '..')", name)
	}
	return nil
}

func parseAutoModFw(field fp, raw []byte) (bool, error) {
	if b, ok := asBool(raw); ok {
		return b, nil
	}
	s, ok := asString(raw)
	if !ok {
		return false, invalid(field, "must be \"yes\" or \"no\"")
	}
	return s != "no", nil
}

func restartPolicy(field fp, raw []byte) (string, error) {
	s, err := stringField(field, raw)
	if err != nil {
		return "", err
	}
	if s != RestartSystem && s != RestartContainer {
		return "", invalid(field, "unknown restart policy %q (want system or container)", s)
	}
	return s, nil
}

func statusGoal(field fp, raw []byte) (string, error) {
	s, err := stringField(field, raw)
	if err != nil {
		return "", err
	}
	if s != GoalMounted && s != GoalStarted && s != GoalReady {
		return "", invalid(field, "unknown status goal %q (want MOUNTED, STARTED or READY)", s)
	}
	return s, nil
}

func (p *Platform) parseRoles(field fp, raw []byte) error {
	p.RolesSet = true
	if _, ok := asMembers(raw); ok {
		return nil // object form: no roles, not mgmt
	}
	roles, err := stringArray(field, raw)
	if err != nil {
		return invalid(field, "must be an array of role names or an object")
	}
	p.Roles = roles
	return nil
}

// parseAutoRecovery reads an auto_recovery object.
func parseAutoRecovery(field fp, raw []byte, w warner) (*AutoRecovery, error) {
	ms, ok := asMembers(raw)
	if !ok {
		return nil, invalid(field, "must be an object")
	}
	a := &AutoRecovery{Policy: RecoveryNo, BackoffFactor: 1, BackoffPolicy: BackoffReboot}
	for it := ms; it.next(); {
		m := it.cur
		f := join(field, m.name)
		var err error
		switch m.name {
		case "policy":
			a.Policy, err = stringField(f, m.val)
			if err == nil {
				switch a.Policy {
				case RecoveryNo, RecoveryAlways, RecoveryOnFailure, RecoveryUnlessStopped:
				default:
					err = invalid(f, "unknown policy %q (want no, always, on-failure or unless-stopped)", a.Policy)
				}
			}
		case "max_retries":
			var ok bool
			if a.MaxRetries, ok = asNonNegInt(m.val); !ok {
				err = invalid(f, "must be a non-negative integer")
			}
		case "retry_delay":
			a.RetryDelay, err = nonNegNumber(f, m.val)
		case "backoff_factor":
			a.BackoffFactor, err = nonNegNumber(f, m.val)
		case "reset_window":
			a.ResetWindow, err = seconds(f, m.val)
		case "stable_timeout":
			a.StableTimeout, err = seconds(f, m.val)
		case "backoff_policy":
			a.BackoffPolicy, err = stringField(f, m.val)
			if err == nil {
				if _, perr := parseBackoff(a.BackoffPolicy); perr != nil {
					err = invalid(f, "%v", perr)
				}
			}
		default:
			w.add(f, "unknown key ignored")
		}
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// maxSeconds bounds second counts so that they fit a time.Duration.
const maxSeconds = float64(1<<63-1) / float64(time.Second)

func nonNegNumber(field fp, raw []byte) (float64, error) {
	f, ok := asNumber(raw)
	if !ok || f < 0 || f > maxSeconds {
		return 0, invalid(field, "must be a non-negative number")
	}
	return f, nil
}

// seconds reads a non-negative number of seconds.
func seconds(field fp, raw []byte) (time.Duration, error) {
	f, ok := asNumber(raw)
	if !ok || f < 0 || f >= maxSeconds {
		return 0, invalid(field, "must be a non-negative number of seconds")
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parseBackoff checks a backoff_policy: "reboot" and "never" give 0, a
// duration "<n>s", "<n>min" or "<n>h" (also "<n>m") gives its length.
func parseBackoff(s string) (time.Duration, error) {
	switch s {
	case BackoffReboot, BackoffNever:
		return 0, nil
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("unknown backoff policy %q (want reboot, never or a duration like 30s, 10min, 1h)", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	var unit time.Duration
	switch s[i:] {
	case "s":
		unit = time.Second
	case "m", "min":
		unit = time.Minute
	case "h":
		unit = time.Hour
	default:
		return 0, fmt.Errorf("unknown backoff policy %q (want reboot, never or a duration like 30s, 10min, 1h)", s)
	}
	if err != nil || n <= 0 || n > int64(1<<63-1)/int64(unit) {
		return 0, fmt.Errorf("backoff duration %q out of range", s)
	}
	return time.Duration(n) * unit, nil
}

func parseNetwork(field fp, raw []byte) (*Network, error) {
	ms, ok := asMembers(raw)
	if !ok {
		return nil, invalid(field, "must be an object")
	}
	n := &Network{}
	for it := ms; it.next(); {
		m := it.cur
		f := join(field, m.name)
		var err error
		switch m.name {
		case "mode":
			n.Mode, err = stringField(f, m.val)
			if err == nil && n.Mode != "host" && n.Mode != "pool" {
				err = invalid(f, "unknown network mode %q (want host or pool)", n.Mode)
			}
		case "pool":
			n.Pool, err = stringField(f, m.val)
		case "hostname":
			n.Hostname, err = stringField(f, m.val)
		case "ip":
			n.IP, err = stringField(f, m.val)
		case "mac":
			n.MAC, err = stringField(f, m.val)
		case "interfaces":
			n.Interfaces = m.val
		}
		if err != nil {
			return nil, err
		}
	}
	if n.Mode == "pool" && n.Pool == "" {
		return nil, invalid(join(field, "pool"), "required when mode is pool")
	}
	return n, nil
}

// parseLogs reads "logs": an array of objects whose values are strings
// (numbers and booleans are kept as their JSON text).
func parseLogs(field fp, raw []byte) ([]map[string]string, error) {
	els, ok := asArray(raw)
	if !ok {
		return nil, invalid(field, "must be an array of objects")
	}
	out := make([]map[string]string, 0, els.count())
	for it := els; it.next(); {
		i, el := it.i, it.cur
		f := index(field, i)
		ms, ok := asMembers(el)
		if !ok {
			return nil, invalid(f, "must be an object")
		}
		l := make(map[string]string)
		for it := ms; it.next(); {
			m := it.cur
			if s, ok := asString(m.val); ok {
				l[m.name] = s
				continue
			}
			switch m.val[0] {
			case '{', '[', 'n':
				return nil, invalid(join(f, m.name), "must be a string, number or boolean")
			}
			l[m.name] = string(m.val)
		}
		out = append(out, l)
	}
	return out, nil
}

func parseStorage(field fp, raw []byte) (map[string]StorageSpec, error) {
	ms, ok := asMembers(raw)
	if !ok {
		return nil, invalid(field, "must be an object")
	}
	out := make(map[string]StorageSpec)
	for it := ms; it.next(); {
		m := it.cur
		f := join(field, m.name)
		if err := validName(f, m.name); err != nil {
			return nil, err
		}
		vs, ok := asMembers(m.val)
		if !ok {
			return nil, invalid(f, "must be an object")
		}
		var sp StorageSpec
		for it := vs; it.next(); {
			v := it.cur
			var err error
			switch v.name {
			case "persistence":
				sp.Persistence, err = stringField(join(f, v.name), v.val)
				if err == nil {
					switch sp.Persistence {
					case "permanent", "revision", "boot":
					default:
						err = invalid(join(f, v.name), "unknown persistence %q (want permanent, revision or boot)", sp.Persistence)
					}
				}
			case "disk":
				sp.Disk, err = stringField(join(f, v.name), v.val)
			}
			if err != nil {
				return nil, err
			}
		}
		if sp.Persistence == "" {
			return nil, invalid(join(f, "persistence"), "missing (want permanent, revision or boot)")
		}
		out[m.name] = sp
	}
	return out, nil
}

func parseDriverRefs(field fp, raw []byte) (DriverRefs, error) {
	var d DriverRefs
	ms, ok := asMembers(raw)
	if !ok {
		return d, invalid(field, "must be an object")
	}
	for it := ms; it.next(); {
		m := it.cur
		var err error
		f := join(field, m.name)
		switch m.name {
		case "required":
			d.Required, err = stringArray(f, m.val)
		case "optional":
			d.Optional, err = stringArray(f, m.val)
		case "manual":
			d.Manual, err = stringArray(f, m.val)
		}
		if err != nil {
			return d, err
		}
	}
	return d, nil
}

func parseServices(field fp, raw []byte) (*Services, error) {
	ms, ok := asMembers(raw)
	if !ok {
		return nil, invalid(field, "must be an object")
	}
	s := &Services{}
	for it := ms; it.next(); {
		m := it.cur
		var err error
		f := join(field, m.name)
		switch m.name {
		case "required":
			s.Required, err = parseRequirements(f, m.val)
		case "optional":
			s.Optional, err = parseRequirements(f, m.val)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func parseRequirements(field fp, raw []byte) ([]ServiceRequirement, error) {
	els, ok := asArray(raw)
	if !ok {
		return nil, invalid(field, "must be an array of objects")
	}
	out := make([]ServiceRequirement, 0, els.count())
	for it := els; it.next(); {
		i, el := it.i, it.cur
		f := index(field, i)
		ms, ok := asMembers(el)
		if !ok {
			return nil, invalid(f, "must be an object")
		}
		var r ServiceRequirement
		for it := ms; it.next(); {
			m := it.cur
			var dst *string
			switch m.name {
			case "name":
				dst = &r.Name
			case "type":
				dst = &r.Type
			case "role":
				dst = &r.Role
			case "interface":
				dst = &r.Interface
			case "target":
				dst = &r.Target
			default:
				continue
			}
			v, err := stringField(join(f, m.name), m.val)
			if err != nil {
				return nil, err
			}
			*dst = v
		}
		if r.Name == "" {
			return nil, invalid(join(f, "name"), "missing")
		}
		out = append(out, r)
	}
	return out, nil
}
