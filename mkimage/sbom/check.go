package sbom

import (
	"bytes"
	_ "embed" // the SPDX 2.3 JSON schema
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// schemaJSON is the official SPDX 2.3 JSON schema (schema/README.md).
//
//go:embed schema/spdx-schema-2.3.json
var schemaJSON []byte

const schemaURL = "http://spdx.org/rdf/terms/2.3"

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, err
	}
	return c.Compile(schemaURL)
})

// Validate checks an SBOM as its consumers read it, by more than our
// writer: against the official SPDX 2.3 JSON schema, parsed back by
// tools-golang, and with every relationship naming an element of the
// document (or of a document it references).
func Validate(data []byte) (*spdx.Document, error) {
	sch, err := compiled()
	if err != nil {
		return nil, fmt.Errorf("sbom: schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("sbom: not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return nil, fmt.Errorf("sbom: SPDX 2.3 schema: %w", err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("sbom: tools-golang: %w", err)
	}
	if doc.SPDXVersion != spdx.Version {
		return nil, fmt.Errorf("sbom: spdxVersion %q, want %s", doc.SPDXVersion, spdx.Version)
	}
	known := map[common.ElementID]bool{"DOCUMENT": true}
	for _, p := range doc.Packages {
		if known[p.PackageSPDXIdentifier] {
			return nil, fmt.Errorf("sbom: duplicate id %s", p.PackageSPDXIdentifier)
		}
		known[p.PackageSPDXIdentifier] = true
	}
	for _, f := range doc.Files {
		if known[f.FileSPDXIdentifier] {
			return nil, fmt.Errorf("sbom: duplicate id %s", f.FileSPDXIdentifier)
		}
		known[f.FileSPDXIdentifier] = true
	}
	refs := map[common.DocumentID]bool{}
	for _, r := range doc.ExternalDocumentReferences {
		refs[r.DocumentRefID] = true
	}
	for _, r := range doc.Relationships {
		for _, e := range []common.DocElementID{r.RefA, r.RefB} {
			if e.DocumentRefID != "" && refs[e.DocumentRefID] || e.SpecialID != "" {
				continue
			}
			if !known[e.ElementRefID] {
				return nil, fmt.Errorf("sbom: relationship %s %s %s: no element %s", r.RefA.ElementRefID, r.Relationship, r.RefB.ElementRefID, e.ElementRefID)
			}
		}
	}
	return doc, nil
}

// Coverage checks that doc covers the image in storage: every object of
// trails/0 is a file of the document with its sha256, contained by a
// package, and every regular file of its cpio archives (the initrd and
// its addons) is a file contained by its archive and tied to a package
// (the package CONTAINS it, or it is GENERATED_FROM one).
func Coverage(doc *spdx.Document, storage string) error {
	st, err := readState(filepath.Join(storage, "trails", "0", ".pvr", "json"))
	if err != nil {
		return err
	}
	files := map[string][]*spdx.File{} // by name
	for _, f := range doc.Files {
		files[f.FileName] = append(files[f.FileName], f)
	}
	pkgs := map[common.ElementID]bool{}
	for _, p := range doc.Packages {
		pkgs[p.PackageSPDXIdentifier] = true
	}
	contains := map[common.ElementID][]common.ElementID{} // file → what contains it
	from := map[common.ElementID][]common.ElementID{}     // file → what it is generated from
	for _, r := range doc.Relationships {
		switch r.Relationship {
		case common.TypeRelationshipContains:
			contains[r.RefB.ElementRefID] = append(contains[r.RefB.ElementRefID], r.RefA.ElementRefID)
		case common.TypeRelationshipGeneratedFrom:
			from[r.RefA.ElementRefID] = append(from[r.RefA.ElementRefID], r.RefB.ElementRefID)
		}
	}
	sha := func(f *spdx.File) string {
		for _, c := range f.Checksums {
			if c.Algorithm == common.SHA256 {
				return c.Value
			}
		}
		return ""
	}
	var errs []error
	for _, key := range st.keys {
		obj, ok := st.objects[key]
		if !ok {
			continue
		}
		var of *spdx.File
		for _, f := range files["./"+key] {
			if sha(f) == obj {
				of = f
			}
		}
		if of == nil {
			errs = append(errs, fmt.Errorf("object %s (%s): no file with its sha256", key, obj))
			continue
		}
		if !anyIn(contains[of.FileSPDXIdentifier], pkgs) {
			errs = append(errs, fmt.Errorf("object %s: no package contains it", key))
		}
		data, err := os.ReadFile(filepath.Join(storage, "objects", obj))
		if err != nil {
			return err
		}
		if !isArchive(data) {
			continue
		}
		members, err := ReadArchive(data)
		if errors.Is(err, ErrNotArchive) {
			continue // compressed, not an initrd: covered as one file above
		}
		if err != nil {
			return fmt.Errorf("sbom: %s: %w", key, err)
		}
		for _, m := range members {
			var mf *spdx.File
			for _, f := range files[m.Path] {
				if sha(f) == m.SHA256 && contains[f.FileSPDXIdentifier] != nil && anyIs(contains[f.FileSPDXIdentifier], of.FileSPDXIdentifier) {
					mf = f
				}
			}
			switch {
			case mf == nil:
				errs = append(errs, fmt.Errorf("%s in %s: no file with its sha256 contained by the archive", m.Path, key))
			case !anyIn(contains[mf.FileSPDXIdentifier], pkgs) && !anyIn(from[mf.FileSPDXIdentifier], pkgs):
				errs = append(errs, fmt.Errorf("%s in %s: no package contains it or made it", m.Path, key))
			}
		}
	}
	return errors.Join(errs...)
}

func anyIn(ids []common.ElementID, set map[common.ElementID]bool) bool {
	for _, id := range ids {
		if set[id] {
			return true
		}
	}
	return false
}

func anyIs(ids []common.ElementID, want common.ElementID) bool {
	for _, id := range ids {
		if id == want {
			return true
		}
	}
	return false
}

// Counts are an SBOM's size figures.
type Counts struct{ Packages, Files, Relationships int }

// Count returns doc's counts.
func Count(doc *spdx.Document) Counts {
	return Counts{len(doc.Packages), len(doc.Files), len(doc.Relationships)}
}
