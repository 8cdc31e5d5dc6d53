package sbom

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuiltImage checks the SBOM of a built image tree: PV_SBOM_OUT is
// out/<target> after ./build.docker.sh <target> (test.docker.sh image
// sets it); the SBOM must pass Validate and cover the image (Coverage).
func TestBuiltImage(t *testing.T) {
	out := os.Getenv("PV_SBOM_OUT")
	if out == "" {
		t.Skip("set PV_SBOM_OUT=out/<target> to check a built image's SBOM")
	}
	sboms, err := filepath.Glob(filepath.Join(out, "*.spdx.json"))
	if err != nil || len(sboms) != 1 {
		t.Fatalf("%s: want one <target>.spdx.json, got %q (%v)", out, sboms, err)
	}
	target := strings.TrimSuffix(filepath.Base(sboms[0]), ".spdx.json")
	if l, err := os.Readlink(filepath.Join(out, "sbom.json")); err != nil || l != filepath.Base(sboms[0]) {
		t.Errorf("sbom.json (upstream's name) = %q, %v; want a link to %s", l, err, filepath.Base(sboms[0]))
	}
	data, err := os.ReadFile(sboms[0])
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Validate(data)
	if err != nil {
		t.Fatal(err)
	}
	c := Count(doc)
	t.Logf("%s: %d packages, %d files, %d relationships", target, c.Packages, c.Files, c.Relationships)
	storage := filepath.Join(out, "work", "storage")
	if _, err := os.Stat(storage); err != nil {
		t.Skipf("no storage tree (App Engine package): %v", err)
	}
	if err := Coverage(doc, storage); err != nil {
		t.Error(err)
	}
}
