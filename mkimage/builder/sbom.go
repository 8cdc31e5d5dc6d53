package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/debpkg"
	"github.com/pantavisor/pantavisor-go/mkimage/sbom"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// SBOMName is the SBOM's file name in the output directory.
func SBOMName(target string) string { return target + ".spdx.json" }

// makeSBOM describes the storage tree of trails/0 (mkimage/sbom) and
// writes <out>/<target>.spdx.json.
func (b *run) makeSBOM(ctx context.Context, pk *packages, bin *binaries) (*spdx.Document, string, error) {
	in := sbom.Input{Name: b.r.Name, Epoch: b.o.Epoch, Storage: b.res.Storage, Programs: map[string]string{},
		Creator: "pantavisor-mkimage", Cache: filepath.Join(b.o.Cache, "artifacts")}
	for _, p := range pk.Src {
		f, err := debpkg.Fields(ctx, p.Path)
		if err != nil {
			return nil, "", err
		}
		d := sbom.Deb{Name: p.Name, Version: p.Version, Arch: p.Arch, SHA256: p.SHA256,
			Source: strings.Fields(f["Source"] + " ")[0], Homepage: f["Homepage"],
			Root: filepath.Join(b.o.Cache, "unpacked", p.SHA256)}
		if p.Filename != "" {
			d.DownloadLocation = strings.TrimSuffix(b.r.Debian.Mirror, "/") + "/" + p.Filename
		}
		in.Debs = append(in.Debs, d)
	}
	if bin != nil {
		for n, p := range bin.Files {
			in.Programs[n] = p
		}
		if bin.StaticPvcontrol != "" {
			in.Programs["pvcontrol (static)"] = bin.StaticPvcontrol
		}
	}
	if b.o.MergeSBOM != "" {
		files, err := sbom.MergeFiles(b.o.MergeSBOM)
		if err != nil {
			return nil, "", err
		}
		in.Merge = files
	}
	doc, err := sbom.Generate(ctx, in)
	if err != nil {
		return nil, "", err
	}
	note, err := b.writeSBOM(doc)
	return doc, note, err
}

// writeSBOM writes doc to <out>/<target>.spdx.json.
func (b *run) writeSBOM(doc *spdx.Document) (string, error) {
	data, err := sbom.Marshal(doc)
	if err != nil {
		return "", err
	}
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
	b.res.SBOM = out
	b.res.Sizes["spdx.json"] = int64(len(data))
	return fmt.Sprintf("(%s: %d packages, %d files, %d relationships)", filepath.Base(out), len(doc.Packages), len(doc.Files), len(doc.Relationships)), nil
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
