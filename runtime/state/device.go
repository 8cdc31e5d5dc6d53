package state

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Device is device.json, or the legacy groups.json/disks.json pair.
type Device struct {
	// Groups are the explicit groups (nil when the document has none).
	Groups []Group
	// Disks are the disks of "disks", "disks_v2" and "disks_v3" in that
	// order (disks_v3 entries of unknown type are skipped, as upstream).
	Disks []Disk
	// Volumes are Pantavisor's own volumes (pv--devmeta, pv--usrmeta,
	// pv--phconfig, pv--firmware), by name.
	Volumes map[string]StorageSpec
	// Pools are the IPAM pools of "network.pools", by name.
	Pools map[string]Pool
}

// Disk returns the disk called name or carrying it as an alias, or nil.
func (d *Device) Disk(name string) *Disk {
	if d == nil {
		return nil
	}
	for i := range d.Disks {
		if d.Disks[i].Name == name || slices.Contains(d.Disks[i].Aliases, name) {
			return &d.Disks[i]
		}
	}
	return nil
}

// Disk types known to Pantavisor.
var diskTypes = []string{
	"directory", "dm-crypt-caam", "dm-crypt-dcp", "dm-crypt-versatile",
	"swap-disk", "volume-disk", "dual",
}

// Disk is one storage medium of device.json "disks*" or disks.json.
type Disk struct {
	Name, Type, Path, Mode, Format, Provision string
	// ProvisionOps is "provision_ops" (or the older "provision_options").
	ProvisionOps                             string
	MountTarget, MountOptions, FormatOptions string
	UUID                                     string
	// Default is "default": "yes" (or true).
	Default bool
	// Aliases are extra names; Disks and InitOrder belong to "dual" disks.
	Aliases, Disks, InitOrder []string
	// Raw is the canonical disk object, for fields not modelled here.
	Raw []byte
}

// Pool is one IPAM pool of device.json "network.pools".
type Pool struct {
	Name, Type, Bridge string
	Subnet             netip.Prefix
	Gateway            netip.Addr
	NAT                bool
}

// parseDevice reads device.json.
func (s *State) parseDevice(k string) error {
	doc, err := s.inlineDoc(k)
	if err != nil {
		return err
	}
	dev := &Device{}
	w := s.warner(k)
	for it := members(doc); it.next(); {
		m := it.cur
		switch m.name {
		case "groups":
			// An empty array counts as absent: the default groups apply.
			dev.Groups, err = parseGroups(top(m.name), m.val, w)
		case "disks", "disks_v2", "disks_v3":
			var disks []Disk
			disks, err = parseDisks(top(m.name), m.val, m.name == "disks_v3", w)
			dev.Disks = append(dev.Disks, disks...)
		case "volumes":
			dev.Volumes, err = parseStorage(top(m.name), m.val)
		case "network":
			dev.Pools, err = parseNetworkPools(top(m.name), m.val)
		default:
			w.add(top(m.name), "unknown key ignored")
		}
		if err != nil {
			return &Error{Key: k, Err: err}
		}
	}
	if err := checkDisks(top("disks"), dev.Disks); err != nil {
		return &Error{Key: k, Err: err}
	}
	for name, v := range dev.Volumes {
		if v.Disk != "" && dev.Disk(v.Disk) == nil {
			return &Error{Key: k, Err: invalid(join(join(top("volumes"), name), "disk"), "unknown disk %q", v.Disk)}
		}
	}
	s.device = dev
	s.groups = dev.Groups
	return nil
}

// parseLegacy reads groups.json and disks.json (or disks_v3.json) when
// there is no device.json.
func (s *State) parseLegacy() error {
	var dev *Device
	if _, ok := s.vals["groups.json"]; ok {
		raw, err := s.inlineRaw("groups.json")
		if err != nil {
			return err
		}
		groups, err := parseGroups(top(""), raw, s.warner("groups.json"))
		if err != nil {
			return &Error{Key: "groups.json", Err: err}
		}
		dev = &Device{Groups: groups}
		s.groups = groups
	}
	for _, k := range []string{"disks.json", "disks_v3.json"} {
		if _, ok := s.vals[k]; !ok {
			continue
		}
		raw, err := s.inlineRaw(k)
		if err != nil {
			return err
		}
		disks, err := parseDisks(top(""), raw, k == "disks_v3.json", s.warner(k))
		if err == nil {
			err = checkDisks(top(""), disks)
		}
		if err != nil {
			return &Error{Key: k, Err: err}
		}
		if dev == nil {
			dev = &Device{}
		}
		dev.Disks = disks
		break
	}
	s.device = dev
	return nil
}

// inlineRaw returns the value of an inline key, rejecting object entries.
func (s *State) inlineRaw(k string) ([]byte, error) {
	if _, ok := s.objects[k]; ok {
		return nil, &Error{Key: k, Err: invalid(top(""), "must be inline JSON, not an object reference")}
	}
	return s.vals[k], nil
}

// parseGroups reads an array of group objects.
func parseGroups(field fp, raw []byte, w warner) ([]Group, error) {
	els, ok := asArray(raw)
	if !ok {
		return nil, invalid(field, "must be an array of groups")
	}
	var out []Group
	for it := els; it.next(); {
		i, el := it.i, it.cur
		f := index(field, i)
		ms, ok := asMembers(el)
		if !ok {
			return nil, invalid(f, "must be an object")
		}
		g := Group{StatusGoal: GoalStarted, RestartPolicy: RestartContainer}
		hasName := false
		for it := ms; it.next(); {
			m := it.cur
			var err error
			mf := join(f, m.name)
			switch m.name {
			case "name":
				hasName = true
				if g.Name, err = stringField(mf, m.val); err == nil {
					err = validName(mf, g.Name)
				}
			case "description":
				g.Description, err = stringField(mf, m.val)
			case "status_goal":
				g.StatusGoal, err = statusGoal(mf, m.val)
			case "restart_policy":
				g.RestartPolicy, err = restartPolicy(mf, m.val)
			case "timeout":
				var d time.Duration
				if d, err = seconds(mf, m.val); err == nil {
					g.Timeout = d
				}
			case "auto_recovery":
				g.AutoRecovery, err = parseAutoRecovery(mf, m.val, w)
			}
			if err != nil {
				return nil, err
			}
		}
		if !hasName {
			return nil, invalid(join(f, "name"), "missing")
		}
		for _, o := range out {
			if o.Name == g.Name {
				return nil, &fieldError{field: join(f, "name").String(), msg: fmt.Sprintf("group %q is defined twice", g.Name), kind: ErrDuplicate}
			}
		}
		out = append(out, g)
	}
	return out, nil
}

// parseDisks reads an array of disk objects. Unknown disk types are an
// error unless lenient (disks_v3), where such disks are skipped.
func parseDisks(field fp, raw []byte, lenient bool, w warner) ([]Disk, error) {
	els, ok := asArray(raw)
	if !ok {
		return nil, invalid(field, "must be an array of disks")
	}
	out := make([]Disk, 0, els.count())
	for it := els; it.next(); {
		i, el := it.i, it.cur
		f := index(field, i)
		ms, ok := asMembers(el)
		if !ok {
			return nil, invalid(f, "must be an object")
		}
		d := Disk{Raw: el}
		for it := ms; it.next(); {
			m := it.cur
			mf := join(f, m.name)
			var dst *string
			var list *[]string
			switch m.name {
			case "name":
				dst = &d.Name
			case "type":
				dst = &d.Type
			case "path":
				dst = &d.Path
			case "mode":
				dst = &d.Mode
			case "format":
				dst = &d.Format
			case "provision":
				dst = &d.Provision
			case "provision_ops", "provision_options":
				dst = &d.ProvisionOps
			case "mount_target":
				dst = &d.MountTarget
			case "mount_options":
				dst = &d.MountOptions
			case "format_options":
				dst = &d.FormatOptions
			case "uuid":
				dst = &d.UUID
			case "aliases":
				list = &d.Aliases
			case "disks":
				list = &d.Disks
			case "init_order":
				list = &d.InitOrder
			case "default":
				if b, ok := asBool(m.val); ok {
					d.Default = b
					continue
				}
				v, err := stringField(mf, m.val)
				if err != nil {
					return nil, err
				}
				d.Default = v == "yes"
				continue
			default:
				continue
			}
			var err error
			if dst != nil {
				*dst, err = stringField(mf, m.val)
			} else {
				*list, err = stringArray(mf, m.val)
			}
			if err != nil {
				return nil, err
			}
		}
		if d.Name == "" {
			return nil, invalid(join(f, "name"), "missing")
		}
		if !slices.Contains(diskTypes, d.Type) {
			if lenient {
				w.add(join(f, "type"), "unknown disk type %q, disk %q skipped", d.Type, d.Name)
				continue
			}
			return nil, invalid(join(f, "type"), "unknown disk type %q", d.Type)
		}
		out = append(out, d)
	}
	return out, nil
}

// checkDisks rejects duplicate disk names and conflicting aliases.
func checkDisks(field fp, disks []Disk) error {
	seen := make(map[string]bool, len(disks))
	for _, d := range disks {
		if seen[d.Name] {
			return &fieldError{field: field.String(), msg: fmt.Sprintf("disk %q is defined twice", d.Name), kind: ErrDuplicate}
		}
		seen[d.Name] = true
	}
	for _, d := range disks {
		for _, a := range d.Aliases {
			if seen[a] {
				return &fieldError{field: field.String(), msg: fmt.Sprintf("alias %q of disk %q shadows another disk name or alias", a, d.Name), kind: ErrDuplicate}
			}
			seen[a] = true
		}
	}
	return nil
}

// parseNetworkPools reads device.json "network" and its "pools".
func parseNetworkPools(field fp, raw []byte) (map[string]Pool, error) {
	ms, ok := asMembers(raw)
	if !ok {
		return nil, invalid(field, "must be an object")
	}
	var pools map[string]Pool
	for it := ms; it.next(); {
		m := it.cur
		if m.name != "pools" {
			continue
		}
		f := join(field, m.name)
		ps, ok := asMembers(m.val)
		if !ok {
			return nil, invalid(f, "must be an object of pools")
		}
		pools = make(map[string]Pool)
		for it := ps; it.next(); {
			p := it.cur
			pool, err := parsePool(join(f, p.name), p.name, p.val)
			if err != nil {
				return nil, err
			}
			pools[p.name] = pool
		}
	}
	return pools, nil
}

func parsePool(field fp, name string, raw []byte) (Pool, error) {
	p := Pool{Name: name, Type: "bridge"}
	ms, ok := asMembers(raw)
	if !ok {
		return p, invalid(field, "must be an object")
	}
	for it := ms; it.next(); {
		m := it.cur
		mf := join(field, m.name)
		var err error
		switch m.name {
		case "type":
			p.Type, err = stringField(mf, m.val)
			if err == nil && p.Type != "bridge" {
				err = invalid(mf, "unknown pool type %q (want bridge)", p.Type)
			}
		case "bridge":
			p.Bridge, err = stringField(mf, m.val)
		case "subnet":
			var v string
			if v, err = stringField(mf, m.val); err == nil {
				if p.Subnet, err = netip.ParsePrefix(v); err != nil || !p.Subnet.Addr().Is4() {
					err = invalid(mf, "%q is not an IPv4 CIDR subnet", v)
				}
			}
		case "gateway":
			var v string
			if v, err = stringField(mf, m.val); err == nil {
				if p.Gateway, err = netip.ParseAddr(v); err != nil || !p.Gateway.Is4() {
					err = invalid(mf, "%q is not an IPv4 address", v)
				}
			}
		case "nat":
			var ok bool
			if p.NAT, ok = asBool(m.val); !ok {
				err = invalid(mf, "must be true or false")
			}
		}
		if err != nil {
			return p, err
		}
	}
	if p.Bridge == "" {
		return p, invalid(join(field, "bridge"), "missing")
	}
	if !p.Subnet.IsValid() {
		return p, invalid(join(field, "subnet"), "missing")
	}
	if p.Gateway.IsValid() && !p.Subnet.Contains(p.Gateway) {
		return p, invalid(join(field, "gateway"), "%s is outside subnet %s", p.Gateway, p.Subnet)
	}
	return p, nil
}

// pool returns the IPAM pool called name.
func (d *Device) pool(name string) (Pool, bool) {
	if d == nil {
		return Pool{}, false
	}
	p, ok := d.Pools[name]
	return p, ok
}
