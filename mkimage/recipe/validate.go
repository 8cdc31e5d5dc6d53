package recipe

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
)

var (
	nameRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	imageRe   = regexp.MustCompile(`^(oci:[^:]+(:[^:]+)?|docker-archive:[^:]+(:.+)?|docker://\S+)$`)
	argRe     = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	debNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	modNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	debVerRe  = regexp.MustCompile(`^[A-Za-z0-9.+~:-]*$`)
)

func invalid(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, key, fmt.Sprintf(format, args...))
}

// Validate checks a recipe after Defaults; the error names the first bad
// key. The boot loader's own needs are checked by its layout
// (mkimage/boot.Lookup), which the builder runs right after.
func (r *Recipe) Validate() error {
	if !nameRe.MatchString(r.Name) {
		return invalid("name", "%q is not a target name (lowercase letters, digits, . _ -)", r.Name)
	}
	if _, err := arch.Lookup(r.Arch); err != nil {
		return invalid("arch", "%q is not one of %s", r.Arch, strings.Join(arch.Names(), ", "))
	}
	if r.InitMode != ModeEmbedded && r.InitMode != ModeAppengine {
		return invalid("init_mode", "%q is not embedded or appengine", r.InitMode)
	}
	if err := r.validateDebian(); err != nil {
		return err
	}
	if err := r.validatePackages(); err != nil {
		return err
	}
	for i, m := range r.Initrd.Modules {
		if !modNameRe.MatchString(m) {
			return invalid(fmt.Sprintf("initrd.modules[%d]", i), "%q is not a module name", m)
		}
	}
	for i, f := range r.Initrd.Files {
		if err := checkRel(strings.TrimPrefix(f, "/")); err != nil || !strings.HasPrefix(f, "/") {
			return invalid(fmt.Sprintf("initrd.files[%d]", i), "%q must be an absolute clean sysroot path", f)
		}
	}
	for i, p := range r.Initrd.Programs {
		if !slices.Contains(Programs, p) {
			return invalid(fmt.Sprintf("initrd.programs[%d]", i), "%q is not one of %v", p, Programs)
		}
		if host := Applets[p]; slices.Contains(r.Initrd.Programs, host) {
			return invalid(fmt.Sprintf("initrd.programs[%d]", i), "%q is an applet of %s, which links it: remove it", p, host)
		}
	}
	if len(r.Initrd.Programs) > 0 && !slices.Contains(r.Initrd.Programs, "pantavisor") && r.InitMode == ModeEmbedded {
		return invalid("initrd.programs", "embedded images need pantavisor")
	}
	if _, ok := initrd.Lookup(r.Initrd.Compression); !ok {
		return invalid("initrd.compression", "%q is not one of %v", r.Initrd.Compression, initrd.Names())
	}
	for key, comp := range map[string]string{"modules.compression": r.Modules.Compression, "container_compression": r.ContainerCompression} {
		if !slices.Contains([]string{"xz", "gzip", "lz4", "zstd"}, comp) {
			return invalid(key, "%q is not xz, gzip, lz4 or zstd", comp)
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"modules.include", r.Modules.Include}, {"modules.exclude", r.Modules.Exclude}, {"firmware.include", r.Firmware.Include}} {
		for i, p := range l.list {
			if err := checkRel(p); err != nil {
				return invalid(fmt.Sprintf("%s[%d]", l.key, i), "%v", err)
			}
			if _, err := path.Match(p, ""); err != nil {
				return invalid(fmt.Sprintf("%s[%d]", l.key, i), "%q: %v", p, err)
			}
		}
	}
	for i, m := range r.Modules.Extra {
		if err := checkRel(m.Src); err != nil || m.Src == "" {
			return invalid(fmt.Sprintf("modules.extra[%d].src", i), "%q is not a repository directory", m.Src)
		}
		if r.Kernel.Package == "" {
			return invalid(fmt.Sprintf("modules.extra[%d]", i), "needs kernel.package (its headers build the module)")
		}
	}
	for _, f := range [][2]string{{"config.pantavisor", r.Config.Pantavisor}, {"config.pantahub", r.Config.Pantahub}, {"vendor.skel", r.Vendor.Skel}, {"vendor.stepskel", r.Vendor.StepSkel}} {
		if f[1] == "" {
			continue
		}
		if err := checkRel(f[1]); err != nil {
			return invalid(f[0], "%v", err)
		}
	}
	seen := map[string]bool{}
	for i, a := range r.Addons {
		if !nameRe.MatchString(a) {
			return invalid(fmt.Sprintf("addons[%d]", i), "%q is not an addon name", a)
		}
		if seen[a] {
			return invalid(fmt.Sprintf("addons[%d]", i), "%q listed twice", a)
		}
		seen[a] = true
	}
	for i, c := range r.Containers {
		key := fmt.Sprintf("containers[%d]", i)
		if !nameRe.MatchString(c.Name) {
			return invalid(key+".name", "%q is not a container name", c.Name)
		}
		kinds := 0
		for _, v := range []string{c.Source, c.Template, c.Image} {
			if v != "" {
				kinds++
			}
		}
		switch {
		case kinds == 0:
			return invalid(key, "needs source, template or image")
		case kinds > 1:
			return invalid(key, "source, template and image exclude each other")
		case c.Image != "" && !imageRe.MatchString(c.Image):
			return invalid(key+".image", "%q: want oci:<dir>[:tag], docker-archive:<file> or docker://<ref>", c.Image)
		case len(c.Args) > 0 && c.Image == "":
			return invalid(key+".args", "only image containers take template args")
		case c.Template != "" && c.Template != "mgmt" && c.Template != "network" && c.Template != "pvr-sdk":
			return invalid(key+".template", "%q: want mgmt, network or pvr-sdk", c.Template)
		case c.Wifi && c.Template != "network":
			return invalid(key+".wifi", "only the network template takes wifi")
		case c.Verity != nil && c.Source != "":
			return invalid(key+".verity", "a source is merged as it is: convert it with pvr dm-convert")
		}
		for k := range c.Args {
			if !argRe.MatchString(k) {
				return invalid(key+".args", "%q is not a template arg name (PV_…)", k)
			}
		}
		if seen["container "+c.Name] {
			return invalid(key+".name", "%q listed twice", c.Name)
		}
		seen["container "+c.Name] = true
	}
	if r.InitMode == ModeAppengine {
		if r.Bootloader.Type != BootNone || len(r.Disk.Partitions) > 0 || r.Kernel.Package != "" {
			return invalid("init_mode", "appengine targets have no kernel, bootloader or partitions")
		}
		return nil
	}
	if r.Kernel.Package == "" {
		return invalid("kernel.package", "missing (embedded targets boot a Debian kernel)")
	}
	if strings.ContainsAny(r.Kernel.Cmdline, "\n\r\"") {
		return invalid("kernel.cmdline", "must be one line without double quotes")
	}
	if err := r.validateBootloader(); err != nil {
		return err
	}
	return r.validateDisk()
}

func (r *Recipe) validateDebian() error {
	if !debNameRe.MatchString(r.Debian.Suite) {
		return invalid("debian.suite", "%q is not a suite name", r.Debian.Suite)
	}
	if !strings.HasPrefix(r.Debian.Mirror, "http://") && !strings.HasPrefix(r.Debian.Mirror, "https://") && !strings.HasPrefix(r.Debian.Mirror, "file:/") {
		return invalid("debian.mirror", "%q is not an http(s) or file URL", r.Debian.Mirror)
	}
	for i, c := range r.Debian.Components {
		if !debNameRe.MatchString(c) {
			return invalid(fmt.Sprintf("debian.components[%d]", i), "%q is not a component", c)
		}
	}
	if !strings.HasPrefix(r.Debian.Keyring, "/") {
		return invalid("debian.keyring", "%q must be an absolute path", r.Debian.Keyring)
	}
	return nil
}

func (r *Recipe) validatePackages() error {
	check := func(key string, list []string) error {
		for i, p := range list {
			if !debNameRe.MatchString(p) {
				return invalid(fmt.Sprintf("%s[%d]", key, i), "%q is not a Debian package name", p)
			}
		}
		return nil
	}
	if r.Kernel.Package != "" && !debNameRe.MatchString(r.Kernel.Package) {
		return invalid("kernel.package", "%q is not a Debian package name", r.Kernel.Package)
	}
	if !debVerRe.MatchString(r.Kernel.Version) {
		return invalid("kernel.version", "%q is not a Debian version", r.Kernel.Version)
	}
	if err := check("initrd.packages", r.Initrd.Packages); err != nil {
		return err
	}
	return check("firmware.packages", r.Firmware.Packages)
}

// validateBootloader checks the boot loader word; what a boot loader
// needs of the recipe (firmware, partitions, architectures) its entry in
// the layout registry (mkimage/boot) checks.
func (r *Recipe) validateBootloader() error {
	b := r.Bootloader
	switch {
	case b.Type == BootNone:
		return invalid("bootloader.type", "embedded targets need a bootloader")
	case !slices.Contains(Bootloaders, b.Type):
		return invalid("bootloader.type", "%q is not one of %s or none", b.Type, strings.Join(Bootloaders, ", "))
	}
	if b.Timeout < 0 || b.Timeout > 600 {
		return invalid("bootloader.timeout", "%d is not within 0..600 seconds", b.Timeout)
	}
	return nil
}

func (r *Recipe) validateDisk() error {
	d := r.Disk
	if d.Table != "gpt" && d.Table != "mbr" {
		return invalid("disk.table", "%q is not gpt or mbr", d.Table)
	}
	if d.AlignKiB <= 0 || d.AlignKiB%4 != 0 || d.AlignKiB > 65536 {
		return invalid("disk.align_kib", "%d is not a multiple of 4 within 4..65536", d.AlignKiB)
	}
	if len(d.Partitions) == 0 {
		return invalid("disk.partitions", "missing")
	}
	if d.Table == "mbr" && len(d.Partitions) > 4 {
		return invalid("disk.partitions", "mbr holds at most 4 partitions, got %d", len(d.Partitions))
	}
	names := map[string]bool{}
	used := int64(1) // first alignment unit / partition table
	for i, p := range d.Partitions {
		key := fmt.Sprintf("disk.partitions[%d]", i)
		if !nameRe.MatchString(p.Name) {
			return invalid(key+".name", "%q is not a partition name", p.Name)
		}
		if names[p.Name] {
			return invalid(key+".name", "%q used twice", p.Name)
		}
		names[p.Name] = true
		if err := checkPartition(key, p, d.Table); err != nil {
			return err
		}
		if p.Role == RoleStorage && i != len(d.Partitions)-1 {
			return invalid(key+".role", "the storage partition must be the last one (it is grown on first boot)")
		}
		used += int64(p.SizeMiB)
	}
	st := r.StoragePartition()
	if st == nil {
		return invalid("disk.partitions", "no storage partition")
	}
	if st.SizeMiB == 0 {
		used += 16 // the least storage that makes sense
	}
	used += 1 // backup GPT
	if int64(r.ImageSizeMiB) < used {
		return invalid("image_size_mib", "%d MiB is smaller than the partitions need (%d MiB)", r.ImageSizeMiB, used)
	}
	return nil
}

func checkPartition(key string, p Partition, table string) error {
	fsByRole := map[string][]string{
		RoleBIOSBoot: {"none"},
		RoleESP:      {"fat16", "fat32"},
		RoleBoot:     {"fat16", "fat32"},
		RoleStorage:  {"ext4"},
		RoleRaw:      {"none"},
	}
	allowed, ok := fsByRole[p.Role]
	if !ok {
		return invalid(key+".role", "%q is not bios-boot, esp, boot, storage or raw", p.Role)
	}
	if !slices.Contains(allowed, p.FS) {
		return invalid(key+".fs", "%q is not allowed for role %s (want %s)", p.FS, p.Role, strings.Join(allowed, " or "))
	}
	if p.Role == RoleBIOSBoot && table != "gpt" {
		return invalid(key+".role", "bios-boot partitions exist only on gpt")
	}
	if p.SizeMiB < 0 || p.SizeMiB > 1<<22 || (p.SizeMiB == 0 && p.Role != RoleStorage) {
		return invalid(key+".size_mib", "%d is not a size in MiB (only storage may be 0 = rest of the disk)", p.SizeMiB)
	}
	switch p.FS {
	case "fat16", "fat32":
		if len(p.Label) > 11 || strings.ToUpper(p.Label) != p.Label || strings.ContainsAny(p.Label, `"*+,./:;<=>?[\]|`) {
			return invalid(key+".label", "%q is not a FAT label (up to 11 upper-case characters)", p.Label)
		}
		if p.FS == "fat32" && p.SizeMiB < 33 {
			return invalid(key+".fs", "fat32 needs at least 33 MiB (65525 clusters); use fat16")
		}
	case "ext4":
		if p.Label == "" || len(p.Label) > 16 || strings.ContainsAny(p.Label, " /\x00") {
			return invalid(key+".label", "%q is not an ext4 label (1-16 characters, no space or slash)", p.Label)
		}
	}
	return nil
}

// checkRel rejects empty, absolute and escaping relative paths.
func checkRel(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.ContainsRune(p, 0) {
		return fmt.Errorf("%q is not a relative path", p)
	}
	if path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("%q is not a clean path inside the tree", p)
	}
	return nil
}
