package app_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/app"
	"github.com/pantavisor/pantavisor-go/mkimage/container"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
	"github.com/pantavisor/pantavisor-go/runtime/pvtx"
)

// TestPvtxAcceptsExport: our pvtx takes what the app workflow makes.
func TestPvtxAcceptsExport(t *testing.T) {
	needTools(t)
	ctx := context.Background()
	repo, co := t.TempDir(), t.TempDir()
	ocitest.WriteLayout(filepath.Join(repo, "img"), "v1", small(t, "x"))
	if _, err := app.Add(ctx, co, "web", "oci:"+repo+"/img", map[string]any{"PV_GROUP": "app"}, app.Options{Platform: "linux/amd64", Comp: "gzip"}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := app.Export(co, []string{"web"}, &b); err != nil {
		t.Fatal(err)
	}
	// PVR_MERGE_SRC takes it too.
	tgz := filepath.Join(t.TempDir(), "web.tgz")
	os.WriteFile(tgz, b.Bytes(), 0o644)
	e, err := container.LoadSource(tgz, t.TempDir())
	if err != nil {
		t.Fatalf("LoadSource(export) = %v", err)
	}
	if got, want := strings.Join(e.Keys(), " "), "web/lxc.container.conf web/root.squashfs web/root.squashfs.docker-digest web/run.json web/src.json"; got != want {
		t.Errorf("LoadSource keys = %s, want %s", got, want)
	}
	tx, err := pvtx.Open(pvtx.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Begin(ctx, "empty", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Add(ctx, &b); err != nil {
		t.Fatalf("pvtx add = %v", err)
	}
	show, err := tx.Show()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"web/run.json"`, `"web/src.json"`, `"web/root.squashfs"`, `"web/root.squashfs.docker-digest"`, `"web/lxc.container.conf"`} {
		if !strings.Contains(string(show), k) {
			t.Errorf("pvtx show lacks %s:\n%s", k, show)
		}
	}
}
