package sbom

import (
	"crypto/sha1"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// debIndex finds which Debian package holds a path.
type debIndex struct {
	debs  []Deb
	ids   []common.ElementID
	paths map[string][]int // rel path → debs holding it (file or symlink)
	// sums are the sha256s of package files by rel path, per package:
	// a .deb never changes, so they are kept in the cache (sumsVersion)
	sums  []map[string]string
	dirty []bool
	cache string
}

const sumsVersion = "v1"

func (x *debIndex) sumsPath(i int) string {
	return filepath.Join(x.cache, "sbom-deb-"+sumsVersion+"-"+x.debs[i].SHA256+".json")
}

// save keeps the sums computed for the next build.
func (x *debIndex) save() {
	if x.cache == "" {
		return
	}
	for i, d := range x.dirty {
		if !d {
			continue
		}
		data, err := json.Marshal(x.sums[i])
		if err != nil || os.MkdirAll(x.cache, 0o755) != nil {
			continue
		}
		p := x.sumsPath(i)
		if os.WriteFile(p+".tmp", data, 0o644) == nil {
			os.Rename(p+".tmp", p) // a failure costs hashing again, nothing else
		}
	}
}

func (g *gen) debs(debs []Deb) (*debIndex, error) {
	x := &debIndex{paths: map[string][]int{}, cache: g.cache}
	seen := map[string]bool{}
	for _, d := range debs {
		if !seen[d.SHA256] {
			seen[d.SHA256] = true
			x.debs = append(x.debs, d)
		}
	}
	sort.Slice(x.debs, func(i, j int) bool { return x.debs[i].Name+" "+x.debs[i].Arch < x.debs[j].Name+" "+x.debs[j].Arch })
	for i, d := range x.debs {
		id := g.ids.new("Package", "deb", d.Name, d.Arch)
		x.ids = append(x.ids, id)
		sums := map[string]string{}
		if x.cache != "" {
			if data, err := os.ReadFile(x.sumsPath(i)); err == nil && json.Unmarshal(data, &sums) != nil {
				sums = map[string]string{}
			}
		}
		x.sums = append(x.sums, sums)
		x.dirty = append(x.dirty, false)
		lic := Licensing{Declared: NoAssertion, Copyright: NoAssertion}
		if data, err := os.ReadFile(filepath.Join(d.Root, "usr", "share", "doc", d.Name, "copyright")); err == nil {
			lic = ParseCopyright(data)
		}
		declared := lic.Declared
		for _, r := range lic.Refs {
			// LicenseRef ids are per document: name them per package
			nid := "LicenseRef-" + strings.Trim(idRe.ReplaceAllString(d.Name, "-"), "-") + "-" + strings.TrimPrefix(r.ID, "LicenseRef-")
			declared = replaceToken(declared, r.ID, nid)
			g.licenses[nid] = &spdx.OtherLicense{LicenseIdentifier: nid, LicenseName: r.Name, ExtractedText: r.Text,
				LicenseComment: "from /usr/share/doc/" + d.Name + "/copyright"}
		}
		src := d.Source
		if src == "" {
			src = d.Name
		}
		purl := fmt.Sprintf("pkg:deb/debian/%s@%s?arch=%s", d.Name, url.PathEscape(d.Version), d.Arch)
		g.pkg(&spdx.Package{PackageName: d.Name, PackageSPDXIdentifier: id, PackageVersion: d.Version,
			PackageFileName:           debFileName(d),
			PackageSupplier:           &common.Supplier{SupplierType: "Organization", Supplier: "Debian"},
			PackageDownloadLocation:   d.DownloadLocation,
			PackageChecksums:          []common.Checksum{{Algorithm: common.SHA256, Value: d.SHA256}},
			PackageHomePage:           d.Homepage,
			PackageSourceInfo:         "built from the Debian source package " + src,
			PackageLicenseDeclared:    declared,
			PackageCopyrightText:      lic.Copyright,
			PackageComment:            "architecture " + d.Arch,
			PrimaryPackagePurpose:     "LIBRARY",
			PackageExternalReferences: []*spdx.PackageExternalReference{{Category: common.CategoryPackageManager, RefType: "purl", Locator: purl}},
		})
		err := filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(d.Root, p)
			x.paths[filepath.ToSlash(rel)] = append(x.paths[filepath.ToSlash(rel)], i)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sbom: %s: %w", d.Name, err)
		}
	}
	return x, nil
}

// replaceToken replaces the license id old by new in an expression.
func replaceToken(expr, old, new string) string {
	f := strings.FieldsFunc(expr, func(r rune) bool { return r == ' ' })
	for i, t := range f {
		if strings.Trim(t, "()") == old {
			f[i] = strings.Replace(t, old, new, 1)
		}
	}
	return strings.Join(f, " ")
}

// sum returns the sha256 of a deb's regular file, following symlinks
// inside the package root only; "" when there is none.
func (x *debIndex) sum(i int, rel string) string {
	if s, ok := x.sums[i][rel]; ok {
		return s
	}
	root := x.debs[i].Root
	p := rel
	s := ""
	for range 8 {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			break
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(filepath.Join(root, p))
			if err != nil {
				break
			}
			if path.IsAbs(t) {
				p = path.Clean(t)[1:]
			} else {
				p = path.Join(path.Dir(p), t)
			}
			if strings.HasPrefix(p, "../") {
				break
			}
			continue
		}
		if fi.Mode().IsRegular() {
			s, _ = fileSHA256(filepath.Join(root, p))
		}
		break
	}
	x.sums[i][rel] = s
	x.dirty[i] = true
	return s
}

// with returns the packages holding a path matching one of globs.
func (x *debIndex) with(globs ...string) []common.ElementID {
	var out []common.ElementID
	for i, d := range x.debs {
		for _, g := range globs {
			if m, _ := filepath.Glob(filepath.Join(d.Root, g)); len(m) > 0 {
				out = append(out, x.ids[i])
				break
			}
		}
	}
	return out
}

// prefix returns where a volume's files sit in the packages ("" when
// they sit at their own paths, as in the initrd or a container's root):
// the directory most of its first files are found under.
func (x *debIndex) prefix(members []Member) string {
	votes := map[string]int{}
	n := 0
	for _, m := range members {
		if n == 8 {
			break
		}
		rel := strings.TrimPrefix(m.Path, "/")
		if strings.Count(rel, "/") == 0 && len(members) > 1 {
			continue // a top-level name says too little
		}
		n++
		if _, ok := x.paths[rel]; ok {
			votes[""]++
			continue
		}
		for p := range x.paths {
			for _, suf := range []string{"", ".xz", ".zst", ".gz"} {
				if strings.HasSuffix(p, "/"+rel+suf) {
					votes[strings.TrimSuffix(p, rel+suf)]++
				}
			}
		}
	}
	best := ""
	for _, p := range slices.Sorted(maps.Keys(votes)) {
		if votes[p] > votes[best] {
			best = p
		}
	}
	return best
}

// progIndex finds which of our programs a file is.
type progIndex struct {
	bySum  map[string]common.ElementID
	byName map[string]common.ElementID
}

func (g *gen) programs(progs map[string]string) (*progIndex, error) {
	x := &progIndex{bySum: map[string]common.ElementID{}, byName: map[string]common.ElementID{}}
	mods := map[string]common.ElementID{}
	for _, name := range slices.Sorted(maps.Keys(progs)) {
		p := progs[name]
		bi, err := buildinfo.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("sbom: program %s: %w", name, err)
		}
		s256, s1, err := fileSums(p)
		if err != nil {
			return nil, fmt.Errorf("sbom: program %s: %w", name, err)
		}
		id := g.ids.new("Package", "go-program", name)
		g.pkg(&spdx.Package{PackageName: name, PackageSPDXIdentifier: id, PackageVersion: bi.Main.Version,
			PackageChecksums:      []common.Checksum{{Algorithm: common.SHA1, Value: s1}, {Algorithm: common.SHA256, Value: s256}},
			PackageSourceInfo:     "go build of " + bi.Path + " with " + bi.GoVersion,
			PrimaryPackagePurpose: "APPLICATION",
		})
		x.bySum[s256] = id
		x.byName[name] = id
		linked := append([]*module{{Path: "stdlib", Version: bi.GoVersion}}, modules(bi)...)
		for _, m := range linked {
			key := m.Path + "@" + m.Version
			mid, ok := mods[key]
			if !ok {
				mid = g.ids.new("Package", "go-module", m.Path, m.Version)
				mods[key] = mid
				lic, comment := "", ""
				if m.Path == "stdlib" {
					lic = "BSD-3-Clause"
				}
				if m.Sum != "" {
					comment = "go.sum " + m.Sum
				}
				g.pkg(&spdx.Package{PackageName: m.Path, PackageSPDXIdentifier: mid, PackageVersion: m.Version,
					PackageDownloadLocation: goDownload(m),
					PackageLicenseDeclared:  lic, PackageComment: comment, PrimaryPackagePurpose: "LIBRARY",
					PackageExternalReferences: []*spdx.PackageExternalReference{{Category: common.CategoryPackageManager, RefType: "purl",
						Locator: "pkg:golang/" + m.Path + "@" + url.PathEscape(m.Version)}},
				})
			}
			g.rel(id, common.TypeRelationshipStaticLink, mid)
		}
	}
	return x, nil
}

// module is a module linked into a program, replacements applied.
type module struct{ Path, Version, Sum string }

func modules(bi *buildinfo.BuildInfo) []*module {
	out := []*module{{Path: bi.Main.Path, Version: bi.Main.Version, Sum: bi.Main.Sum}}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		out = append(out, &module{Path: d.Path, Version: d.Version, Sum: d.Sum})
	}
	return out
}

func goDownload(m *module) string {
	if m.Path == "stdlib" || m.Version == "" || m.Version == "(devel)" || strings.HasPrefix(m.Path, ".") {
		return NoAssertion
	}
	return "https://proxy.golang.org/" + m.Path + "/@v/" + m.Version + ".zip"
}

// origin says where a member file came from: the id of its package and
// whether it holds the same bytes (false: derived from it); "" = none of
// the inputs (the builder wrote it).
func origin(prefix string, m Member, debs *debIndex, progs *progIndex) (common.ElementID, bool) {
	if id, ok := progs.bySum[m.SHA256]; ok {
		return id, true
	}
	rel := prefix + strings.TrimPrefix(m.Path, "/")
	cands := []string{rel}
	if r, ok := strings.CutPrefix(rel, "usr/"); ok {
		cands = append(cands, r)
	} else {
		cands = append(cands, "usr/"+rel)
	}
	var derived common.ElementID
	for _, c := range cands {
		for _, suf := range []string{"", ".xz", ".zst", ".gz"} {
			for _, i := range debs.paths[c+suf] {
				if suf == "" && debs.sum(i, c) == m.SHA256 {
					return debs.ids[i], true
				}
				if derived == "" {
					derived = debs.ids[i]
				}
			}
		}
	}
	if derived != "" {
		return derived, false
	}
	if id, ok := progs.byName[path.Base(m.Path)]; ok {
		return id, false
	}
	return "", false
}

func fileSHA256(p string) (string, error) {
	s, _, err := fileSums(p)
	return s, err
}

func fileSums(p string) (string, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	h256, h1 := sha256.New(), sha1.New()
	if _, err := io.Copy(io.MultiWriter(h256, h1), f); err != nil {
		return "", "", err
	}
	return hex.EncodeToString(h256.Sum(nil)), hex.EncodeToString(h1.Sum(nil)), nil
}

// debFileName is the .deb's name in the archive: the download
// location's, else Debian's pattern (the version without its epoch).
func debFileName(d Deb) string {
	if d.DownloadLocation != "" {
		return path.Base(d.DownloadLocation)
	}
	v := d.Version
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	return fmt.Sprintf("%s_%s_%s.deb", d.Name, v, d.Arch)
}
