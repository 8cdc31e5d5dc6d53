package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/debpkg"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/sbom"
	"github.com/pantavisor/pantavisor-go/mkimage/trail"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// UpstreamSBOMName is upstream's name of the SBOM, a link to SBOMName.
const UpstreamSBOMName = "sbom.json"

// SBOMName is the SBOM's file name in the output directory.
func SBOMName(target string) string { return target + ".spdx.json" }

// makeSBOM describes the storage tree of trails/0 (mkimage/sbom) and
// writes <out>/<target>.spdx.json.
//
// The document is a function of trails/0's state, the .debs, the
// programs, the merged SBOMs, the epoch and mkimage itself: it is cached
// by their digest, so a no-change rebuild only hashes its inputs. (App
// Engine packages add their programs after the sbom stage and are not
// cached.)
func (b *run) makeSBOM(ctx context.Context, pk *packages, bin *binaries) (*spdx.Document, string, error) {
	var merge []string
	if b.o.MergeSBOM != "" {
		files, err := sbom.MergeFiles(b.o.MergeSBOM)
		if err != nil {
			return nil, "", err
		}
		merge = files
	}
	progs := map[string]string{}
	if bin != nil {
		for n, p := range bin.Files {
			progs[n] = p
		}
		if bin.StaticPvcontrol != "" {
			progs["pvcontrol (static)"] = bin.StaticPvcontrol
		}
	}
	appengine := b.r.InitMode == recipe.ModeAppengine
	key, err := b.sbomKey(pk, progs, merge)
	if err != nil {
		return nil, "", err
	}
	cached := filepath.Join(b.o.Cache, "artifacts", "sbom-"+key+".spdx.json")
	if data, err := os.ReadFile(cached); err == nil && !appengine {
		note, err := b.writeSBOMBytes(data)
		return nil, note + " (cached: same inputs)", err
	}
	in := sbom.Input{Name: b.r.Name, Epoch: b.o.Epoch, Storage: b.res.Storage, Programs: map[string]string{},
		Creator: "pantavisor-mkimage", Cache: filepath.Join(b.o.Cache, "artifacts")}
	for _, p := range pk.Src {
		f, err := debpkg.Fields(ctx, p.Path)
		if err != nil {
			return nil, "", err
		}
		d := sbom.Deb{Name: p.Name, Version: p.Version, Arch: p.Arch, SHA256: p.SHA256,
			Source: debSource(f["Source"], p.Name), Homepage: f["Homepage"],
			Root: filepath.Join(b.o.Cache, "unpacked", p.SHA256)}
		if p.Filename != "" {
			d.DownloadLocation = strings.TrimSuffix(b.r.Debian.Mirror, "/") + "/" + p.Filename
		}
		in.Debs = append(in.Debs, d)
	}
	in.Programs, in.Merge = progs, merge
	doc, err := sbom.Generate(ctx, in)
	if err != nil {
		return nil, "", err
	}
	note, err := b.writeSBOM(doc)
	if err == nil && !appengine {
		// a failed write costs generating it again next time, nothing else
		if data, rerr := os.ReadFile(b.res.SBOM); rerr == nil {
			writeFileAtomic(cached, data)
		}
	}
	return doc, note, err
}

// describeSquashfs describes a squashfs volume the build just made from
// dir for the sbom stage (sbom.DescribeSquashfs), which then need not
// unpack it: the bsp and containers stages do it beside the initrd's
// compression.
func (b *run) describeSquashfs(image, dir string) error {
	return sbom.DescribeSquashfs(filepath.Join(b.o.Cache, "artifacts"), image, dir)
}

// debSource is a binary package's source package: the control file's
// Source field without its version ("glibc (2.36-9)"), or the package's
// own name when the field is absent (raspi-firmware, firmware-brcm80211).
func debSource(field, name string) string {
	if f := strings.Fields(field); len(f) > 0 {
		return f[0]
	}
	return name
}

// sbomKey digests every input of the SBOM.
func (b *run) sbomKey(pk *packages, progs map[string]string, merge []string) (string, error) {
	h := sha256.New()
	st, err := os.ReadFile(filepath.Join(b.res.Storage, "trails", "0", ".pvr", "json"))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "sbom v1\nmkimage %s\nname %s\nepoch %d\nmirror %s\nstate %x\n", selfID(), b.r.Name, b.o.Epoch, b.r.Debian.Mirror, sha256.Sum256(st))
	for _, p := range pk.Src {
		fmt.Fprintf(h, "deb %s %s %s\n", p.SHA256, p.Filename, p.Name)
	}
	for _, n := range slices.Sorted(maps.Keys(progs)) {
		sum, err := trail.FileSHA(progs[n])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "program %q %s\n", n, sum)
	}
	for _, f := range merge {
		sum, err := trail.FileSHA(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "merge %q %s\n", f, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeSBOM writes doc to <out>/<target>.spdx.json.
func (b *run) writeSBOM(doc *spdx.Document) (string, error) {
	data, err := sbom.Marshal(doc)
	if err != nil {
		return "", err
	}
	note, err := b.writeSBOMBytes(data)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("(%s: %d packages, %d files, %d relationships)", note, len(doc.Packages), len(doc.Files), len(doc.Relationships)), nil
}

// writeSBOMBytes writes the document's bytes to <out>/<target>.spdx.json.
func (b *run) writeSBOMBytes(data []byte) (string, error) {
	out := filepath.Join(b.o.Out, SBOMName(b.r.Name))
	if err := os.MkdirAll(b.o.Out, 0o755); err != nil {
		return "", err
	}
	// through a temporary: a failed write leaves no half document
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return "", fmt.Errorf("sbom: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("sbom: %w", err)
	}
	// upstream's name for the same document (seeds §5.2.10: out/<target>/sbom.json)
	link := filepath.Join(b.o.Out, UpstreamSBOMName)
	if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
		return "", err
	}
	if err := os.Symlink(filepath.Base(out), link); err != nil {
		return "", fmt.Errorf("sbom: %w", err)
	}
	b.res.SBOM = out
	b.setSize("spdx.json", int64(len(data)))
	return filepath.Base(out), nil
}

// appengineSBOM adds the App Engine package's programs (built by
// appengine.Assemble, after the sbom stage) and writes the SBOM again
// into the package.
func (b *run) appengineSBOM(doc *spdx.Document) (string, error) {
	if doc == nil {
		return "", nil
	}
	bins, err := filepath.Glob(filepath.Join(b.o.Out, "bin", "*"))
	if err != nil {
		return "", err
	}
	progs := map[string]string{}
	for _, p := range bins {
		progs[filepath.Base(p)] = p
	}
	if err := sbom.AddPrograms(doc, progs); err != nil {
		return "", err
	}
	return b.writeSBOM(doc)
}
