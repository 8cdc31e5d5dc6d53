// Package sbom writes the SPDX 2.3 software bill of materials of an image:
// what is in trails/0 and where each part came from.
//
//	doc, err := sbom.Generate(ctx, sbom.Input{Name: "x64-uefi", Storage: st, Debs: debs, ...})
//	data, err := sbom.Marshal(doc) // reproducible bytes, namespace from content
//
// The document describes one package for the image, which CONTAINS the
// BSP and each container of trails/0; those CONTAIN their objects (the
// initrd, the kernel, the squashfs volumes, ...) as files with their
// sha256. Every regular file of the initrd and its cpio addons is a file
// of its own, contained by the archive and tied to where it came from:
// the Debian package holding the same bytes (CONTAINS), the Debian package
// it was derived from (GENERATED_FROM: stripped, decompressed), one of our
// Go programs (with the Go modules linked into it, STATIC_LINK), or the
// builder itself (generated configuration). Debian packages carry their
// licence as an SPDX expression when their copyright file is DEP-5, and
// the .deb's sha256; SBOMs given to merge (PV_MERGE_SBOM) come in as
// external document references with their packages.
package sbom

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
)

// Deb is a Debian package the build used.
type Deb struct {
	Name, Version, Arch string
	// SHA256 is the .deb's, as the archive's signed index states it.
	SHA256 string
	// Source is the source package ("" = same as Name); Homepage as the
	// control record says.
	Source, Homepage string
	// DownloadLocation is the .deb's URL ("" = NOASSERTION).
	DownloadLocation string
	// Root is the package unpacked (dpkg -x): its files and its
	// /usr/share/doc/<name>/copyright.
	Root string
}

// Input is what Generate describes.
type Input struct {
	// Name names the image (the target).
	Name string
	// Epoch is SOURCE_DATE_EPOCH: the document's creation time.
	Epoch int64
	// Storage is the storage tree: trails/0 and objects/.
	Storage string
	Debs    []Deb
	// Programs are our Go programs by name: the binaries built for the
	// image (their build info gives the modules linked in).
	Programs map[string]string
	// Merge are SPDX JSON documents to merge (PV_MERGE_SBOM), in order.
	Merge []string
	// Creator is the tool, "name-version".
	Creator string
	// Cache, when set, keeps the file lists of archives and volumes by
	// their sha256 (objects are content-addressed), so a rebuild reads
	// again only what changed.
	Cache string
}

// Namespace prefixes every document namespace; the rest is the
// document's content hash.
const Namespace = "https://pantavisor.io/spdxdocs/"

// ids hands out unique SPDX element ids.
type ids map[common.ElementID]bool

var idRe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

func (m ids) new(parts ...string) common.ElementID {
	base := strings.Trim(idRe.ReplaceAllString(strings.Join(parts, "-"), "-"), "-")
	id := common.ElementID(base)
	for i := 2; m[id]; i++ {
		id = common.ElementID(fmt.Sprintf("%s-%d", base, i))
	}
	m[id] = true
	return id
}

// gen accumulates the document.
type gen struct {
	doc *spdx.Document
	ids ids
	// extracted licences by id
	licenses map[string]*spdx.OtherLicense
	cache    string
}

// objectVersion names the format of cached object descriptions.
const objectVersion = "v2"

// objectInfo is what the SBOM says about an object beyond its sha256.
type objectInfo struct {
	SHA1 string
	// Kind is "cpio" or "squashfs" when the object has Members.
	Kind    string
	Members []Member `json:",omitempty"`
}

// object describes the object p, named by its sha256: its SHA1 and, for
// archives and volumes, their files. Objects are content-addressed, so
// the description is cached by name; a miss reads the object and checks
// it hashes to its name.
func (g *gen) object(ctx context.Context, p, sha string) (*objectInfo, error) {
	cp := objectInfoPath(g.cache, sha)
	info := &objectInfo{}
	if g.cache != "" {
		if data, err := os.ReadFile(cp); err == nil && json.Unmarshal(data, info) == nil && info.SHA1 != "" {
			return info, nil
		}
	}
	data, s1, err := readObject(p, sha)
	if err != nil {
		return nil, err
	}
	info.SHA1 = s1
	switch {
	case data != nil:
		info.Kind = "cpio"
		info.Members, err = ReadArchive(data)
		if errors.Is(err, ErrNotArchive) {
			// compressed but not an initrd (a gzipped FAT image): one file
			info.Kind, info.Members, err = "", nil, nil
		}
		if err != nil {
			return nil, err
		}
	case isSquashfs(p) && len(data) == 0 && fileSize(p) <= maxVolume:
		info.Kind = "squashfs"
		if info.Members, err = ReadSquashfs(ctx, p); err != nil {
			return nil, err
		}
	}
	if g.cache != "" {
		// a failed write costs a cache miss next time, nothing else
		writeObjectInfo(g.cache, sha, info)
	}
	return info, nil
}

func objectInfoPath(cache, sha string) string {
	return filepath.Join(cache, "sbom-object-"+objectVersion+"-"+sha+".json")
}

// writeObjectInfo caches the description of the object named sha.
func writeObjectInfo(cache, sha string, info *objectInfo) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	// a private temporary: builds side by side may describe one object
	f, err := os.CreateTemp(cache, ".sbom-object-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), objectInfoPath(cache, sha))
}

// maxVolume bounds the squashfs volumes whose files are listed (they are
// unpacked into a temporary directory to be hashed): a larger one, say a
// big container of PVR_MERGE_SRC, is described as one file.
const maxVolume = 1 << 30

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func isSquashfs(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4)
	_, err = io.ReadFull(f, head)
	return err == nil && string(head) == "hsqs"
}

func (g *gen) rel(a common.ElementID, typ string, b common.ElementID) {
	g.doc.Relationships = append(g.doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", string(a)), RefB: common.MakeDocElementID("", string(b)), Relationship: typ})
}

func (g *gen) pkg(p *spdx.Package) *spdx.Package {
	for _, f := range []*string{&p.PackageDownloadLocation, &p.PackageLicenseConcluded, &p.PackageLicenseDeclared, &p.PackageCopyrightText} {
		if *f == "" {
			*f = NoAssertion
		}
	}
	g.doc.Packages = append(g.doc.Packages, p)
	return p
}

func (g *gen) file(id common.ElementID, name, sha256, sha1, comment string) {
	sums := []common.Checksum{{Algorithm: common.SHA256, Value: sha256}}
	if sha1 != "" {
		sums = append([]common.Checksum{{Algorithm: common.SHA1, Value: sha1}}, sums...)
	}
	g.doc.Files = append(g.doc.Files, &spdx.File{FileName: name, FileSPDXIdentifier: id, Checksums: sums,
		LicenseConcluded: NoAssertion, FileCopyrightText: NoAssertion, FileComment: comment})
}

// Generate builds the SBOM of the image in in.Storage.
func Generate(ctx context.Context, in Input) (*spdx.Document, error) {
	if in.Name == "" || in.Storage == "" {
		return nil, errors.New("sbom: no image name or storage")
	}
	created := time.Unix(in.Epoch, 0).UTC().Format(time.RFC3339)
	creator := in.Creator
	if creator == "" {
		creator = "pantavisor-mkimage"
	}
	g := &gen{ids: ids{}, licenses: map[string]*spdx.OtherLicense{}, cache: in.Cache, doc: &spdx.Document{
		SPDXVersion: spdx.Version, DataLicense: spdx.DataLicense, SPDXIdentifier: "DOCUMENT",
		DocumentName: in.Name,
		CreationInfo: &spdx.CreationInfo{Created: created, Creators: []common.Creator{{CreatorType: "Tool", Creator: creator}}},
	}}
	g.ids["DOCUMENT"] = true
	st, err := readState(filepath.Join(in.Storage, "trails", "0", ".pvr", "json"))
	if err != nil {
		return nil, err
	}
	image := g.pkg(&spdx.Package{PackageName: in.Name, PackageSPDXIdentifier: g.ids.new("Package", "image", in.Name),
		PackageVersion: "trails/0", PrimaryPackagePurpose: "OPERATING-SYSTEM",
		PackageComment: "the factory revision trails/0 of the image, state sha256 " + st.digest})
	g.rel("DOCUMENT", common.TypeRelationshipDescribe, image.PackageSPDXIdentifier)

	debs, err := g.debs(in.Debs)
	if err != nil {
		return nil, err
	}
	progs, err := g.programs(in.Programs)
	if err != nil {
		return nil, err
	}
	mkimage := g.pkg(&spdx.Package{PackageName: "pantavisor-mkimage-generated", PackageSPDXIdentifier: g.ids.new("Package", "mkimage-generated"),
		PackageVersion: creator, PrimaryPackagePurpose: "FILE",
		PackageComment: "files the image builder wrote itself: configuration, module indexes, trust store, vendor skeleton, state JSON"})

	// the parts of trails/0: one package per top-level key (bsp, each
	// container), containing its objects and JSON documents
	groups := map[string]*spdx.Package{}
	for _, key := range st.keys {
		grp, _, _ := strings.Cut(key, "/")
		if !strings.Contains(key, "/") || grp == "_sigs" {
			grp = ""
		}
		p := groups[grp]
		if p == nil && grp != "" {
			purpose, name := "CONTAINER", grp
			if grp == "bsp" {
				purpose, name = "OPERATING-SYSTEM", in.Name+"-bsp"
			}
			p = g.pkg(&spdx.Package{PackageName: name, PackageSPDXIdentifier: g.ids.new("Package", "trail", grp),
				PrimaryPackagePurpose: purpose, PackageComment: "trails/0/" + grp + st.comment(grp)})
			groups[grp] = p
			g.rel(image.PackageSPDXIdentifier, common.TypeRelationshipContains, p.PackageSPDXIdentifier)
		}
		owner := image.PackageSPDXIdentifier
		if p != nil {
			owner = p.PackageSPDXIdentifier
		}
		fid := g.ids.new("File", "trail", key)
		obj, isObj := st.objects[key]
		if !isObj {
			sum := sha256.Sum256(st.docs[key])
			s1 := sha1.Sum(st.docs[key])
			g.file(fid, "./"+key, hex.EncodeToString(sum[:]), hex.EncodeToString(s1[:]), "JSON document of the state")
			g.rel(owner, common.TypeRelationshipContains, fid)
			g.rel(fid, common.TypeRelationshipGeneratedFrom, mkimage.PackageSPDXIdentifier)
			continue
		}
		info, err := g.object(ctx, filepath.Join(in.Storage, "objects", obj), obj)
		if err != nil {
			return nil, fmt.Errorf("sbom: %s: %w", key, err)
		}
		g.file(fid, "./"+key, obj, info.SHA1, "object "+obj)
		g.rel(owner, common.TypeRelationshipContains, fid)
		g.origin(key, fid, info, debs, progs, mkimage.PackageSPDXIdentifier)
	}
	debs.save()
	if err := g.merge(in.Merge, image.PackageSPDXIdentifier, groups); err != nil {
		return nil, err
	}
	for _, id := range slices.Sorted(maps.Keys(g.licenses)) {
		g.doc.OtherLicenses = append(g.doc.OtherLicenses, g.licenses[id])
	}
	return g.doc, nil
}

// Marshal writes doc as indented JSON. The namespace is derived from the
// rest of the content, so the same image gives the same bytes.
func Marshal(doc *spdx.Document) ([]byte, error) {
	doc.DocumentNamespace = Namespace + doc.DocumentName
	var b strings.Builder
	if err := spdxjson.Write(doc, &b, spdxjson.Indent(" ")); err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	sum := sha256.Sum256([]byte(b.String()))
	doc.DocumentNamespace = Namespace + doc.DocumentName + "-" + hex.EncodeToString(sum[:])
	b.Reset()
	if err := spdxjson.Write(doc, &b, spdxjson.Indent(" ")); err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	return []byte(b.String()), nil
}

// state is trails/0's state JSON: object keys and JSON documents.
type state struct {
	keys    []string
	objects map[string]string // key → sha256
	docs    map[string][]byte // key → JSON
	digest  string
}

var shaRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

func readState(p string) (*state, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("sbom: state of trails/0: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("sbom: state of trails/0: %w", err)
	}
	sum := sha256.Sum256(data)
	st := &state{objects: map[string]string{}, docs: map[string][]byte{}, digest: hex.EncodeToString(sum[:])}
	for k, v := range m {
		if k == "#spec" {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			if !shaRe.MatchString(s) {
				return nil, fmt.Errorf("sbom: state of trails/0: %s: not an object name: %q", k, s)
			}
			st.objects[k] = s
		} else {
			st.docs[k] = v
		}
		st.keys = append(st.keys, k)
	}
	sort.Strings(st.keys)
	return st, nil
}

// comment says what a container's run.json says about where it came from.
func (s *state) comment(grp string) string {
	var run struct {
		Name     string `json:"name"`
		Template string `json:"#template"`
		Type     string `json:"type"`
		Group    string `json:"group"`
	}
	if json.Unmarshal(s.docs[grp+"/run.json"], &run) != nil || run.Name == "" {
		return ""
	}
	c := fmt.Sprintf(": %s container, group %s", run.Type, run.Group)
	if run.Template != "" {
		c += ", template " + run.Template
	}
	return c
}

// readObject reads an object, checks it hashes to its name and returns
// its SHA1 too.
func readObject(p, want string) ([]byte, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	h256, h1 := sha256.New(), sha1.New()
	// archives are read back for their members; other objects are only hashed
	var keep strings.Builder
	w := io.MultiWriter(h256, h1)
	head := make([]byte, 6)
	n, _ := io.ReadFull(f, head)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, "", err
	}
	archive := isArchive(head[:n])
	if archive {
		w = io.MultiWriter(h256, h1, &keep)
	}
	if _, err := io.Copy(w, f); err != nil {
		return nil, "", err
	}
	if got := hex.EncodeToString(h256.Sum(nil)); got != want {
		return nil, "", fmt.Errorf("object %s hashes to %s", want, got)
	}
	var data []byte
	if archive {
		data = []byte(keep.String())
	}
	return data, hex.EncodeToString(h1.Sum(nil)), nil
}

// isArchive: head starts like an archive of a format of mkimage/initrd.
func isArchive(head []byte) bool {
	_, ok := initrd.Detect(head)
	return ok
}

// mergedPrefix is the id prefix of merged elements.
func mergedPrefix(i int) string { return fmt.Sprintf("merged-%d", i+1) }

// origin ties an object to what it came from; archives (the initrd, its
// addons) and volumes (squashfs) also get one file per member.
func (g *gen) origin(key string, fid common.ElementID, info *objectInfo, debs *debIndex, progs *progIndex, mkimage common.ElementID) {
	switch {
	case info.Kind != "":
		g.members(key, fid, info.Members, debs, progs, mkimage)
	case path.Base(key) == "kernel.img":
		ds := debs.with("boot/vmlinuz-*", "boot/vmlinux-*", "boot/Image-*")
		if len(ds) == 0 {
			ds = []common.ElementID{mkimage} // a kernel built otherwise
		}
		for _, d := range ds {
			g.rel(fid, common.TypeRelationshipGeneratedFrom, d)
		}
	default:
		g.rel(fid, common.TypeRelationshipGeneratedFrom, mkimage)
	}
}

// members adds the files of an archive part, each contained by the part
// and tied to its origin.
func (g *gen) members(key string, fid common.ElementID, members []Member, debs *debIndex, progs *progIndex, mkimage common.ElementID) {
	// a volume is mounted somewhere (modules at /lib/modules/<kver>,
	// firmware at /lib/firmware): find where its files sit in the packages
	prefix := debs.prefix(members)
	for _, m := range members {
		mid := g.ids.new("File", path.Base(key), m.Path)
		g.file(mid, m.Path, m.SHA256, m.SHA1, "in ./"+key)
		g.rel(fid, common.TypeRelationshipContains, mid)
		switch id, exact := origin(prefix, m, debs, progs); {
		case id == "":
			g.rel(mid, common.TypeRelationshipGeneratedFrom, mkimage)
		case exact:
			g.rel(id, common.TypeRelationshipContains, mid)
		default:
			g.rel(mid, common.TypeRelationshipGeneratedFrom, id)
		}
	}
}

// AddPrograms adds Go programs that ship beside trails/0 (the App Engine
// package's binaries) to a document made by Generate: the image
// CONTAINS each, and each STATIC_LINKs its modules.
func AddPrograms(doc *spdx.Document, progs map[string]string) error {
	g := &gen{doc: doc, ids: ids{"DOCUMENT": true}, licenses: map[string]*spdx.OtherLicense{}}
	var image common.ElementID
	for _, p := range doc.Packages {
		g.ids[p.PackageSPDXIdentifier] = true
	}
	for _, f := range doc.Files {
		g.ids[f.FileSPDXIdentifier] = true
	}
	for _, r := range doc.Relationships {
		if r.RefA.ElementRefID == "DOCUMENT" && r.Relationship == common.TypeRelationshipDescribe {
			image = r.RefB.ElementRefID
		}
	}
	if image == "" {
		return errors.New("sbom: document describes no image")
	}
	x, err := g.programs(progs)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(x.byName)) {
		g.rel(image, common.TypeRelationshipContains, x.byName[name])
	}
	return nil
}
