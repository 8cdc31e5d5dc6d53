package sbom

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// MergeFiles lists the SPDX JSON documents of a PV_MERGE_SBOM directory
// (*.json, sorted), or the file itself.
func MergeFiles(p string) ([]string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("PV_MERGE_SBOM: %w", err)
	}
	if !fi.IsDir() {
		return []string{p}, nil
	}
	files, err := filepath.Glob(filepath.Join(p, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("PV_MERGE_SBOM: %s: no *.json SPDX documents", p)
	}
	slices.Sort(files)
	return files, nil
}

// merge adds each document of files: an external document reference
// (namespace and SHA1 of its bytes) and a copy of its packages, under
// ids of their own, with their relationships among themselves. What the
// document describes is contained by the container of the same name as
// the document, or by the image. Files are not copied (the reference
// leads to them); licence references point into the referenced document.
func (g *gen) merge(files []string, image common.ElementID, groups map[string]*spdx.Package) error {
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("sbom: merge: %w", err)
		}
		doc, err := spdxjson.Read(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("sbom: merge %s: not an SPDX JSON document: %w", filepath.Base(f), err)
		}
		if doc.DocumentNamespace == "" {
			return fmt.Errorf("sbom: merge %s: no documentNamespace", filepath.Base(f))
		}
		prefix := mergedPrefix(i)
		ref := common.DocumentID(prefix)
		sum := sha1.Sum(data)
		g.doc.ExternalDocumentReferences = append(g.doc.ExternalDocumentReferences, spdx.ExternalDocumentRef{
			DocumentRefID: ref, URI: doc.DocumentNamespace,
			Checksum: common.Checksum{Algorithm: common.SHA1, Value: hex.EncodeToString(sum[:])}})
		owner := image
		if p := groups[doc.DocumentName]; p != nil {
			owner = p.PackageSPDXIdentifier
		}
		renamed := map[common.ElementID]common.ElementID{}
		for _, p := range doc.Packages {
			if p == nil {
				continue
			}
			c := *p
			c.PackageSPDXIdentifier = g.ids.new(prefix, string(p.PackageSPDXIdentifier))
			renamed[p.PackageSPDXIdentifier] = c.PackageSPDXIdentifier
			c.FilesAnalyzed, c.IsFilesAnalyzedTagPresent, c.PackageVerificationCode, c.Files = false, true, nil, nil
			c.PackageLicenseConcluded = externalLicenses(c.PackageLicenseConcluded, ref)
			c.PackageLicenseDeclared = externalLicenses(c.PackageLicenseDeclared, ref)
			for j, l := range c.PackageLicenseInfoFromFiles {
				if j == 0 {
					c.PackageLicenseInfoFromFiles = slices.Clone(c.PackageLicenseInfoFromFiles)
				}
				c.PackageLicenseInfoFromFiles[j] = externalLicenses(l, ref)
			}
			c.PackageComment = strings.TrimSpace(c.PackageComment + "\nmerged from " + filepath.Base(f) + " (" + string(ref) + ")")
			g.pkg(&c)
		}
		described := 0
		for _, r := range doc.Relationships {
			if r == nil || r.RefA.DocumentRefID != "" || r.RefB.DocumentRefID != "" {
				continue
			}
			a, b := renamed[r.RefA.ElementRefID], renamed[r.RefB.ElementRefID]
			switch {
			case r.RefA.ElementRefID == "DOCUMENT" && r.Relationship == common.TypeRelationshipDescribe && b != "":
				g.rel(owner, common.TypeRelationshipContains, b)
				described++
			case a != "" && b != "":
				g.rel(a, r.Relationship, b)
			}
		}
		if described == 0 { // nothing described: every package is the owner's
			for _, p := range doc.Packages {
				if p != nil {
					g.rel(owner, common.TypeRelationshipContains, renamed[p.PackageSPDXIdentifier])
				}
			}
		}
	}
	return nil
}

// externalLicenses makes the LicenseRef-… ids of a merged expression
// point into the document they are defined in.
func externalLicenses(expr string, ref common.DocumentID) string {
	f := strings.Fields(expr)
	for i, t := range f {
		lead := len(t) - len(strings.TrimLeft(t, "("))
		core := strings.TrimRight(t[lead:], ")")
		if strings.HasPrefix(core, "LicenseRef-") {
			f[i] = t[:lead] + "DocumentRef-" + string(ref) + ":" + core + t[lead+len(core):]
		}
	}
	return strings.Join(f, " ")
}
