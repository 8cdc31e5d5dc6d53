package state

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"
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
		case dir == "_sigs" && twoLevel:
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
	return s.checkBSP()
}

// addPlatform parses <dir>/run.json.
func (s *State) addPlatform(k, dir string) error {
	ms, err := s.inlineDoc(k)
	if err != nil {
		return err
	}
	p, err := parsePlatform(dir, ms)
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
	ref := func(field, name string) error {
		file, _ := VolumeFile(name)
		if file == "" {
			return &Error{Key: p.Key(), Err: invalid(field, "empty file name")}
		}
		k := p.Dir + "/" + file
		if ValidKey(k) != nil {
			return &Error{Key: p.Key(), Err: &fieldError{field: field, msg: fmt.Sprintf("%q is not a clean relative path", name), kind: ErrMissingRef}}
		}
		if _, ok := s.vals[k]; !ok {
			return &Error{Key: p.Key(), Err: &fieldError{field: field, msg: fmt.Sprintf("%s is not in the state", k), kind: ErrMissingRef}}
		}
		return nil
	}
	if p.Config != "" {
		if err := ref("config", p.Config); err != nil {
			return err
		}
	}
	if p.RootVolume != "" {
		if err := ref("root-volume", p.RootVolume); err != nil {
			return err
		}
	}
	for i, v := range p.Volumes {
		if err := ref(index("volumes", i), v); err != nil {
			return err
		}
	}
	if p.Group != "" {
		groups := s.groups
		if groups == nil {
			groups = DefaultGroups()
		}
		if !slices.ContainsFunc(groups, func(g Group) bool { return g.Name == p.Group }) {
			return &Error{Key: p.Key(), Err: invalid("group", "unknown group %q", p.Group)}
		}
	}
	return nil
}

// parseBSP reads bsp/run.json.
func (s *State) parseBSP(k string) error {
	ms, err := s.inlineDoc(k)
	if err != nil {
		return err
	}
	b := &BSP{}
	for _, m := range ms {
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
			if b.Addons, err = stringArray(m.name, m.val); err != nil {
				return &Error{Key: k, Err: err}
			}
			continue
		default:
			if rel, ok := strings.CutPrefix(m.name, "modules_"); ok && rel != "" {
				v, err := stringField(m.name, m.val)
				if err != nil {
					return &Error{Key: k, Err: err}
				}
				if b.ModulesByRelease == nil {
					b.ModulesByRelease = make(map[string]string)
				}
				b.ModulesByRelease[rel] = v
			}
			// initrd_config is ignored (as upstream, which warns);
			// unknown keys are tolerated.
			continue
		}
		if *dst, err = stringField(m.name, m.val); err != nil {
			return &Error{Key: k, Err: err}
		}
	}
	if b.Fit != "" && (b.Linux != "" || b.Rpiab != "") || b.Rpiab != "" && b.Linux != "" {
		return &Error{Key: k, Err: invalid("", "boot assets fit, rpiab and linux are mutually exclusive")}
	}
	if b.Linux == "" && (b.Initrd != "" || b.Fdt != "") {
		return &Error{Key: k, Err: invalid("linux", "missing while initrd or fdt is set")}
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
	check := func(field, name string) error {
		if name == "" {
			return nil
		}
		k := "bsp/" + name
		if ValidKey(k) != nil {
			return &Error{Key: "bsp/run.json", Err: &fieldError{field: field, msg: fmt.Sprintf("%q is not a clean relative path", name), kind: ErrMissingRef}}
		}
		if _, ok := s.vals[k]; !ok {
			return &Error{Key: "bsp/run.json", Err: &fieldError{field: field, msg: k + " is not in the state", kind: ErrMissingRef}}
		}
		return nil
	}
	for _, c := range []struct{ f, v string }{
		{"linux", b.Linux}, {"initrd", b.Initrd}, {"fdt", b.Fdt}, {"fit", b.Fit},
		{"rpiab", b.Rpiab}, {"modules", b.Modules}, {"firmware", b.Firmware},
	} {
		if err := check(c.f, c.v); err != nil {
			return err
		}
	}
	for rel, v := range b.ModulesByRelease {
		if err := check("modules_"+rel, v); err != nil {
			return err
		}
	}
	for i, a := range b.Addons {
		if err := check(index("addons", i), a); err != nil {
			return err
		}
	}
	return nil
}

// parseDrivers reads bsp/drivers.json (driver-aliases@1).
func (s *State) parseDrivers(k string) error {
	ms, err := s.inlineDoc(k)
	if err != nil {
		return err
	}
	d := &Drivers{Sections: make(map[string]map[string][]string)}
	for _, m := range ms {
		if m.name == "#spec" {
			if v, _ := asString(m.val); v != "driver-aliases@1" {
				return &Error{Key: k, Err: &fieldError{field: "#spec", msg: fmt.Sprintf("got %s, want \"driver-aliases@1\"", m.val), kind: ErrSpec}}
			}
			continue
		}
		aliases, ok := asMembers(m.val)
		if !ok {
			return &Error{Key: k, Err: invalid(m.name, "must be an object of alias → module list")}
		}
		sec := make(map[string][]string, len(aliases))
		for _, a := range aliases {
			if sec[a.name], err = stringArray(join(m.name, a.name), a.val); err != nil {
				return &Error{Key: k, Err: err}
			}
		}
		d.Sections[m.name] = sec
	}
	s.drivers = d
	return nil
}

// parseDevice reads device.json.
func (s *State) parseDevice(k string) error {
	ms, err := s.inlineDoc(k)
	if err != nil {
		return err
	}
	dev := &Device{}
	for _, m := range ms {
		switch m.name {
		case "groups":
			dev.Groups, err = parseGroups(m.name, m.val)
			if err == nil && dev.Groups == nil {
				dev.Groups = []Group{}
			}
		case "disks", "disks_v2", "disks_v3":
			var disks []Disk
			disks, err = parseDisks(m.name, m.val)
			dev.Disks = append(dev.Disks, disks...)
		case "volumes":
			if _, ok := asMembers(m.val); !ok {
				err = invalid(m.name, "must be an object")
			}
			dev.Volumes = m.val
		case "network":
			if _, ok := asMembers(m.val); !ok {
				err = invalid(m.name, "must be an object")
			}
			dev.Network = m.val
		}
		if err != nil {
			return &Error{Key: k, Err: err}
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
		if _, err := s.inlineRaw("groups.json"); err != nil {
			return err
		}
		groups, err := parseGroups("", s.vals["groups.json"])
		if err != nil {
			return &Error{Key: "groups.json", Err: err}
		}
		if groups == nil {
			groups = []Group{}
		}
		dev = &Device{Groups: groups}
		s.groups = groups
	}
	for _, k := range []string{"disks.json", "disks_v3.json"} {
		if _, ok := s.vals[k]; !ok {
			continue
		}
		if _, err := s.inlineRaw(k); err != nil {
			return err
		}
		disks, err := parseDisks("", s.vals[k])
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
		return nil, &Error{Key: k, Err: invalid("", "must be inline JSON, not an object reference")}
	}
	return s.vals[k], nil
}

// parseGroups reads an array of group objects.
func parseGroups(field string, raw []byte) ([]Group, error) {
	els, ok := asArray(raw)
	if !ok {
		return nil, invalid(field, "must be an array of groups")
	}
	var out []Group
	for i, el := range els {
		f := index(field, i)
		ms, ok := asMembers(el)
		if !ok {
			return nil, invalid(f, "must be an object")
		}
		g := Group{StatusGoal: GoalStarted, RestartPolicy: RestartContainer}
		hasName := false
		for _, m := range ms {
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
				g.AutoRecovery, err = parseAutoRecovery(mf, m.val)
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
				return nil, &fieldError{field: join(f, "name"), msg: fmt.Sprintf("group %q is defined twice", g.Name), kind: ErrDuplicate}
			}
		}
		out = append(out, g)
	}
	return out, nil
}

// parseDisks reads an array of disk objects.
func parseDisks(field string, raw []byte) ([]Disk, error) {
	els, ok := asArray(raw)
	if !ok {
		return nil, invalid(field, "must be an array of disks")
	}
	out := make([]Disk, 0, len(els))
	for i, el := range els {
		f := index(field, i)
		ms, ok := asMembers(el)
		if !ok {
			return nil, invalid(f, "must be an object")
		}
		d := Disk{Raw: el}
		for _, m := range ms {
			var dst *string
			switch m.name {
			case "name":
				dst = &d.Name
			case "type":
				dst = &d.Type
			case "path":
				dst = &d.Path
			case "format":
				dst = &d.Format
			case "provision":
				dst = &d.Provision
			case "mount_target":
				dst = &d.MountTarget
			case "mount_options":
				dst = &d.MountOptions
			case "format_options":
				dst = &d.FormatOptions
			case "default":
				if b, ok := asBool(m.val); ok {
					d.Default = b
					continue
				}
				v, err := stringField(join(f, m.name), m.val)
				if err != nil {
					return nil, err
				}
				d.Default = v == "yes"
				continue
			default:
				continue
			}
			v, err := stringField(join(f, m.name), m.val)
			if err != nil {
				return nil, err
			}
			*dst = v
		}
		if d.Name == "" {
			return nil, invalid(join(f, "name"), "missing")
		}
		out = append(out, d)
	}
	return out, nil
}

// parseServicesJSON reads <dir>/services.json into the platform of dir.
func (s *State) parseServicesJSON(k string) error {
	ms, err := s.inlineDoc(k)
	if err != nil {
		return err
	}
	var exports []ServiceExport
	for _, m := range ms {
		if m.name != "services" {
			continue
		}
		els, ok := asArray(m.val)
		if !ok {
			return &Error{Key: k, Err: invalid(m.name, "must be an array of objects")}
		}
		for i, el := range els {
			f := index(m.name, i)
			fs, ok := asMembers(el)
			if !ok {
				return &Error{Key: k, Err: invalid(f, "must be an object")}
			}
			var e ServiceExport
			for _, fm := range fs {
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

// parseSignature reads _sigs/<name>.json when it is a pvs@2 signature;
// other inline documents there are tolerated.
func (s *State) parseSignature(k string) error {
	if _, ok := s.objects[k]; ok {
		return nil
	}
	ms, ok := asMembers(s.vals[k])
	if !ok {
		return nil
	}
	var spec string
	for _, m := range ms {
		if m.name == "#spec" {
			spec, _ = asString(m.val)
		}
	}
	if spec != "pvs@2" {
		return nil
	}
	sig := &Signature{Key: k}
	for _, m := range ms {
		var err error
		switch m.name {
		case "protected":
			sig.Protected, err = stringField(m.name, m.val)
		case "signature":
			sig.Sig, err = stringField(m.name, m.val)
		}
		if err != nil {
			return &Error{Key: k, Err: err}
		}
	}
	if sig.Protected == "" {
		return &Error{Key: k, Err: invalid("protected", "missing")}
	}
	if sig.Sig == "" {
		return &Error{Key: k, Err: invalid("signature", "missing")}
	}
	if _, err := decodeB64URL(sig.Sig); err != nil {
		return &Error{Key: k, Err: invalid("signature", "not base64url: %v", err)}
	}
	hdr, err := decodeB64URL(sig.Protected)
	if err != nil {
		return &Error{Key: k, Err: invalid("protected", "not base64url: %v", err)}
	}
	if sig.Header, err = parseSigHeader(hdr); err != nil {
		return &Error{Key: k, Err: err}
	}
	s.sigs[k] = sig
	return nil
}

// decodeB64URL decodes base64url with or without padding.
func decodeB64URL(v string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
}

// parseSigHeader reads a decoded pvs@2 protected header.
func parseSigHeader(hdr []byte) (SigHeader, error) {
	var h SigHeader
	canon, err := Canonical(hdr)
	if err != nil {
		return h, invalid("protected", "not JSON: %v", err)
	}
	ms, ok := asMembers(canon)
	if !ok {
		return h, invalid("protected", "must be a JSON object")
	}
	for _, m := range ms {
		f := join("protected", m.name)
		switch m.name {
		case "alg":
			h.Alg, err = stringField(f, m.val)
			if err == nil {
				switch h.Alg {
				case "RS256", "ES256", "ES384", "ES512":
				default:
					err = invalid(f, "unsupported algorithm %q (want RS256, ES256, ES384 or ES512)", h.Alg)
				}
			}
		case "typ":
			h.Typ, err = stringField(f, m.val)
		case "jwk":
			if _, ok := asMembers(m.val); !ok {
				err = invalid(f, "must be an object")
			}
			h.JWK = m.val
		case "x5c":
			h.X5C, err = stringArray(f, m.val)
		case "pvs":
			pm, ok := asMembers(m.val)
			if !ok {
				err = invalid(f, "must be an object")
				break
			}
			for _, p := range pm {
				switch p.name {
				case "include":
					h.Include, err = stringArray(join(f, p.name), p.val)
				case "exclude":
					h.Exclude, err = stringArray(join(f, p.name), p.val)
				}
				if err != nil {
					break
				}
			}
		}
		if err != nil {
			return h, err
		}
	}
	if h.Alg == "" {
		return h, invalid("protected.alg", "missing")
	}
	return h, nil
}
