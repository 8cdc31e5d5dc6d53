package state

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// parseDocuments interprets the JSON documents of the state and checks
// the references between them.
func (s *State) parseDocuments() error {
	s.byName = make(map[string]*Platform)
	s.byDir = make(map[string]*Platform)
	s.sigs = make(map[string]*Signature)
	var services []string
	for _, k := range s.keys {
		dir, file, nested := strings.Cut(k, "/")
		twoLevel := nested && !strings.Contains(file, "/")
		var err error
		switch {
		case k == "bsp/run.json":
			err = s.parseBSP(k)
		case k == "bsp/drivers.json":
			err = s.parseDrivers(k)
		case k == "device.json":
			err = s.parseDevice(k)
		case twoLevel && dir != "bsp" && !strings.HasPrefix(dir, "_") && file == "run.json":
			err = s.addPlatform(k, dir)
		case twoLevel && dir != "bsp" && !strings.HasPrefix(dir, "_") && file == "services.json":
			services = append(services, k)
		}
		if err == nil && strings.HasSuffix(k, ".json") && bytes.Contains(s.vals[k], pvs2Spec) {
			err = s.parseSignature(k)
		}
		if err != nil {
			return err
		}
	}
	if s.device == nil {
		if err := s.parseLegacy(); err != nil {
			return err
		}
	} else {
		for _, k := range []string{"groups.json", "disks.json", "disks_v3.json"} {
			if _, ok := s.vals[k]; ok {
				s.warner(k).add(top(""), "ignored because device.json is present")
			}
		}
	}
	for _, k := range services {
		if err := s.parseServicesJSON(k); err != nil {
			return err
		}
	}
	s.platforms = make([]*Platform, 0, len(s.byName))
	for _, p := range s.byName {
		s.platforms = append(s.platforms, p)
	}
	slices.SortFunc(s.platforms, func(a, b *Platform) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range s.platforms {
		if err := s.checkPlatform(p); err != nil {
			return err
		}
	}
	if err := s.assignGroups(); err != nil {
		return err
	}
	return s.checkBSP()
}

// addPlatform parses <dir>/run.json.
func (s *State) addPlatform(k, dir string) error {
	doc, err := s.inlineDoc(k)
	if err != nil {
		return err
	}
	p, err := parsePlatform(dir, doc, s.warner(k))
	if err != nil {
		return &Error{Key: k, Err: err}
	}
	if other := s.byName[p.Name]; other != nil {
		return &Error{Key: k, Err: fmt.Errorf("name: %w platform name %q (also in %s)", ErrDuplicate, p.Name, other.Key())}
	}
	s.byName[p.Name] = p
	s.byDir[dir] = p
	return nil
}

// checkPlatform verifies that the files a platform references exist in
// its directory and that its group is known.
func (s *State) checkPlatform(p *Platform) error {
	ref := func(field fp, name string) error {
		file, _ := VolumeFile(name)
		if file == "" {
			return &Error{Key: p.Key(), Err: invalid(field, "empty file name")}
		}
		k := p.Dir + "/" + file
		if ValidKey(k) != nil {
			return &Error{Key: p.Key(), Err: &fieldError{field: field.String(), msg: fmt.Sprintf("%q is not a clean relative path", name), kind: ErrMissingRef}}
		}
		if _, ok := s.vals[k]; !ok {
			return &Error{Key: p.Key(), Err: &fieldError{field: field.String(), msg: fmt.Sprintf("%s is not in the state", k), kind: ErrMissingRef}}
		}
		return nil
	}
	if p.Config != "" {
		if err := ref(top("config"), p.Config); err != nil {
			return err
		}
	}
	if p.RootVolume != "" {
		if err := ref(top("root-volume"), p.RootVolume); err != nil {
			return err
		}
	}
	for i, v := range p.Volumes {
		if err := ref(index(top("volumes"), i), v); err != nil {
			return err
		}
	}
	for _, sp := range p.Storage {
		if sp.Disk != "" && s.device.Disk(sp.Disk) == nil {
			// Report the first bad volume by name, for a stable message.
			for _, name := range slices.Sorted(maps.Keys(p.Storage)) {
				if d := p.Storage[name].Disk; d != "" && s.device.Disk(d) == nil {
					return &Error{Key: p.Key(), Err: invalid(join(join(top("storage"), name), "disk"), "unknown disk %q", d)}
				}
			}
		}
	}
	if n := p.Network; n != nil && n.Mode == "pool" {
		if _, ok := s.device.pool(n.Pool); !ok {
			return &Error{Key: p.Key(), Err: invalid(top("network.pool"), "unknown pool %q", n.Pool)}
		}
	}
	return nil
}

// parseBSP reads bsp/run.json.
func (s *State) parseBSP(k string) error {
	doc, err := s.inlineDoc(k)
	if err != nil {
		return err
	}
	b := &BSP{}
	for it := members(doc); it.next(); {
		m := it.cur
		var dst *string
		switch m.name {
		case "linux":
			dst = &b.Linux
		case "initrd":
			dst = &b.Initrd
		case "fdt":
			dst = &b.Fdt
		case "fit":
			dst = &b.Fit
		case "rpiab":
			dst = &b.Rpiab
		case "modules":
			dst = &b.Modules
		case "firmware":
			dst = &b.Firmware
		case "addons":
			if b.Addons, err = stringArray(top(m.name), m.val); err != nil {
				return &Error{Key: k, Err: err}
			}
			continue
		default:
			if rel, ok := strings.CutPrefix(m.name, "modules_"); ok && rel != "" {
				v, err := stringField(top(m.name), m.val)
				if err != nil {
					return &Error{Key: k, Err: err}
				}
				if b.ModulesByRelease == nil {
					b.ModulesByRelease = make(map[string]string)
				}
				b.ModulesByRelease[rel] = v
			}
			switch {
			case m.name == "initrd_config":
				s.warner(k).add(top(m.name), "ignored (not supported)")
			case !strings.HasPrefix(m.name, "modules_"):
				s.warner(k).add(top(m.name), "unknown key ignored")
			}
			continue
		}
		if *dst, err = stringField(top(m.name), m.val); err != nil {
			return &Error{Key: k, Err: err}
		}
	}
	if b.Fit != "" && (b.Linux != "" || b.Rpiab != "") || b.Rpiab != "" && b.Linux != "" {
		return &Error{Key: k, Err: invalid(top(""), "boot assets fit, rpiab and linux are mutually exclusive")}
	}
	if b.Linux == "" && (b.Initrd != "" || b.Fdt != "") {
		return &Error{Key: k, Err: invalid(top("linux"), "missing while initrd or fdt is set")}
	}
	s.bsp = b
	return nil
}

// checkBSP verifies that the files bsp/run.json names are in the state.
func (s *State) checkBSP() error {
	b := s.bsp
	if b == nil {
		return nil
	}
	check := func(field fp, name string) error {
		if name == "" {
			return nil
		}
		k := "bsp/" + name
		if ValidKey(k) != nil {
			return &Error{Key: "bsp/run.json", Err: &fieldError{field: field.String(), msg: fmt.Sprintf("%q is not a clean relative path", name), kind: ErrMissingRef}}
		}
		if _, ok := s.vals[k]; !ok {
			return &Error{Key: "bsp/run.json", Err: &fieldError{field: field.String(), msg: k + " is not in the state", kind: ErrMissingRef}}
		}
		return nil
	}
	for _, c := range []struct{ f, v string }{
		{"linux", b.Linux}, {"initrd", b.Initrd}, {"fdt", b.Fdt}, {"fit", b.Fit},
		{"rpiab", b.Rpiab}, {"modules", b.Modules}, {"firmware", b.Firmware},
	} {
		if err := check(top(c.f), c.v); err != nil {
			return err
		}
	}
	for rel, v := range b.ModulesByRelease {
		if err := check(top("modules_"+rel), v); err != nil {
			return err
		}
	}
	for i, a := range b.Addons {
		if err := check(index(top("addons"), i), a); err != nil {
			return err
		}
	}
	return nil
}

// parseDrivers reads bsp/drivers.json (driver-aliases@1).
func (s *State) parseDrivers(k string) error {
	doc, err := s.inlineDoc(k)
	if err != nil {
		return err
	}
	d := &Drivers{Sections: make(map[string]map[string][]string)}
	for it := members(doc); it.next(); {
		m := it.cur
		if m.name == "#spec" {
			if v, _ := asString(m.val); v != "driver-aliases@1" {
				return &Error{Key: k, Err: &fieldError{field: "#spec", msg: fmt.Sprintf("got %s, want \"driver-aliases@1\"", m.val), kind: ErrSpec}}
			}
			continue
		}
		aliases, ok := asMembers(m.val)
		if !ok {
			return &Error{Key: k, Err: invalid(top(m.name), "must be an object of alias → module list")}
		}
		sec := make(map[string][]string)
		for it := aliases; it.next(); {
			a := it.cur
			if sec[a.name], err = stringArray(join(top(m.name), a.name), a.val); err != nil {
				return &Error{Key: k, Err: err}
			}
		}
		d.Sections[m.name] = sec
	}
	s.drivers = d
	return nil
}

// parseServicesJSON reads <dir>/services.json into the platform of dir.
func (s *State) parseServicesJSON(k string) error {
	doc, err := s.inlineDoc(k)
	if err != nil {
		return err
	}
	var exports []ServiceExport
	for it := members(doc); it.next(); {
		m := it.cur
		if m.name != "services" {
			continue
		}
		els, ok := asArray(m.val)
		if !ok {
			return &Error{Key: k, Err: invalid(top(m.name), "must be an array of objects")}
		}
		for it := els; it.next(); {
			i, el := it.i, it.cur
			f := index(top(m.name), i)
			fs, ok := asMembers(el)
			if !ok {
				return &Error{Key: k, Err: invalid(f, "must be an object")}
			}
			var e ServiceExport
			for it := fs; it.next(); {
				fm := it.cur
				var dst *string
				switch fm.name {
				case "name":
					dst = &e.Name
				case "type":
					dst = &e.Type
				case "socket":
					dst = &e.Socket
				default:
					continue
				}
				if *dst, err = stringField(join(f, fm.name), fm.val); err != nil {
					return &Error{Key: k, Err: err}
				}
			}
			if e.Name == "" {
				return &Error{Key: k, Err: invalid(join(f, "name"), "missing")}
			}
			exports = append(exports, e)
		}
	}
	dir, _, _ := strings.Cut(k, "/")
	if p := s.byDir[dir]; p != nil {
		p.Provides = exports
	}
	return nil
}
