package recipe

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Addon is an initrd addon recipe (addons/<name>.toml), built into
// bsp/<name>.cpio.xz4 (.cpio.zst4 with [initrd] compression = "zstd")
// and unpacked by the kernel over the base initrd.
type Addon struct {
	// Name defaults to the file name without ".toml".
	Name        string `toml:"name"`
	Description string `toml:"description"`
	// Packages are Debian packages (target arch) the files come from.
	Packages []string `toml:"packages"`
	// Files are copied from the unpacked packages into the addon.
	Files []AddonFile `toml:"files"`
	// Symlinks maps a path in the addon to its link target.
	Symlinks map[string]string `toml:"symlinks"`
}

// AddonFile copies one file of the package sysroot into the addon.
type AddonFile struct {
	// From is an absolute path inside the unpacked packages.
	From string `toml:"from"`
	// To is the absolute path in the initrd ("" = same as From).
	To string `toml:"to"`
	// Mode overrides the permission bits (0 = keep).
	Mode int `toml:"mode"`
}

// LoadAddon reads and validates addons/<name>.toml.
func LoadAddon(path string) (*Addon, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read addon recipe: %w", err)
	}
	a, err := ParseAddon(data, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ParseAddon decodes an addon recipe strictly and validates it.
func ParseAddon(data []byte, defaultName string) (*Addon, error) {
	var a Addon
	if err := decodeStrict(data, &a); err != nil {
		return nil, err
	}
	if a.Name == "" {
		a.Name = defaultName
	}
	for i := range a.Files {
		if a.Files[i].To == "" {
			a.Files[i].To = a.Files[i].From
		}
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return &a, nil
}

// Validate checks an addon recipe.
func (a *Addon) Validate() error {
	if !nameRe.MatchString(a.Name) {
		return invalid("name", "%q is not an addon name", a.Name)
	}
	for i, p := range a.Packages {
		if !debNameRe.MatchString(p) {
			return invalid(fmt.Sprintf("packages[%d]", i), "%q is not a Debian package name", p)
		}
	}
	if len(a.Files) == 0 && len(a.Symlinks) == 0 {
		return invalid("files", "an addon needs at least one file or symlink")
	}
	abs := func(p string) bool { return strings.HasPrefix(p, "/") && checkRel(p[1:]) == nil }
	for i, f := range a.Files {
		key := fmt.Sprintf("files[%d]", i)
		if !abs(f.From) {
			return invalid(key+".from", "%q must be an absolute clean path", f.From)
		}
		if !abs(f.To) {
			return invalid(key+".to", "%q must be an absolute clean path", f.To)
		}
		if f.Mode < 0 || f.Mode > 0o7777 {
			return invalid(key+".mode", "%#o is not a permission mode", f.Mode)
		}
	}
	for p, target := range a.Symlinks {
		if !abs(p) {
			return invalid("symlinks", "%q must be an absolute clean path", p)
		}
		if target == "" || strings.ContainsRune(target, 0) {
			return invalid("symlinks."+p, "empty or invalid target")
		}
	}
	return nil
}
