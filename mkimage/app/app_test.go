package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/app"
	"github.com/pantavisor/pantavisor-go/mkimage/oci"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
)

func needTools(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "flattening keeps owners: needs root")
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs")
	}
}

func small(t *testing.T, msg string) v1.Image {
	t.Helper()
	l, err := ocitest.Layer(ocitest.File("msg", []byte(msg), 0o644))
	if err != nil {
		t.Fatal(err)
	}
	img, err := ocitest.Image("linux/amd64", v1.Config{Cmd: []string{"/bin/cat", "/msg"}, Env: []string{"A=1"},
		Volumes: map[string]struct{}{"/data": {}}}, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestWorkflow: add, ls, install after a src.json edit (no new
// conversion), update following a moved tag, rm.
func TestWorkflow(t *testing.T) {
	needTools(t)
	ctx := context.Background()
	repo := t.TempDir()
	if err := ocitest.WriteLayout(filepath.Join(repo, "img"), "v1", small(t, "one")); err != nil {
		t.Fatal(err)
	}
	co := t.TempDir()
	o := app.Options{Platform: "linux/amd64", Comp: "gzip"}
	src, err := app.Add(ctx, co, "web", "oci:"+repo+"/img:v1", map[string]any{"PV_GROUP": "app"}, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Add(ctx, co, "web", "oci:"+repo+"/img:v1", nil, o); !errors.Is(err, app.ErrExists) {
		t.Errorf("second Add = %v, want %v", err, app.ErrExists)
	}
	ents, _ := os.ReadDir(filepath.Join(co, "web"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"lxc.container.conf", "root.squashfs", "root.squashfs.docker-digest", "run.json", "src.json"}; !slices.Equal(names, want) {
		t.Errorf("web/ = %v, want %v", names, want)
	}
	if ls, _ := app.List(co); !slices.Equal(ls, []string{"web"}) {
		t.Errorf("List = %v, want [web]", ls)
	}
	// Edit src.json's args, install: run.json follows, the squashfs is
	// the same file (not converted again).
	before, _ := os.Stat(filepath.Join(co, "web", app.RootFile))
	src.Args["PV_GROUP"] = "platform"
	src.Args["PV_ROLES"] = []any{"mgmt"}
	b, _ := json.Marshal(src)
	os.WriteFile(filepath.Join(co, "web", app.SrcFile), b, 0o644)
	if err := app.Install(ctx, co, "web", o); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(co, "web", app.RootFile))
	if !os.SameFile(before, after) {
		t.Errorf("install converted the image again")
	}
	run, _ := os.ReadFile(filepath.Join(co, "web", app.RunFile))
	if !strings.Contains(string(run), `"group": "platform"`) || !strings.Contains(string(run), `"mgmt"`) || !strings.Contains(string(run), `"docker--data"`) {
		t.Errorf("run.json after install = %s", run)
	}
	// Move the tag: update converts the new image and records it.
	os.RemoveAll(filepath.Join(repo, "img"))
	ocitest.WriteLayout(filepath.Join(repo, "img"), "v1", small(t, "two"))
	changed, err := app.Update(ctx, co, "web", o)
	if err != nil || !changed {
		t.Fatalf("Update = %v, %v; want changed", changed, err)
	}
	got, _ := app.Read(co, "web")
	if got.DockerDigest == src.DockerDigest || got.Args["PV_GROUP"] != "platform" {
		t.Errorf("after update src.json = %+v (old digest %s)", got, src.DockerDigest)
	}
	dig, _ := os.ReadFile(filepath.Join(co, "web", app.DigestFile))
	if string(dig) != got.DockerDigest {
		t.Errorf("digest file %q, src.json %q", dig, got.DockerDigest)
	}
	// A src.json pinned to a digest the layout no longer has: install
	// after removing the squashfs refuses rather than taking another image.
	os.Remove(filepath.Join(co, "web", app.RootFile))
	got.DockerDigest = src.DockerDigest
	b, _ = json.Marshal(got)
	os.WriteFile(filepath.Join(co, "web", app.SrcFile), b, 0o644)
	if err := app.Install(ctx, co, "web", o); !errors.Is(err, app.ErrImageMoved) {
		t.Errorf("Install of a moved image = %v, want %v", err, app.ErrImageMoved)
	}
	if err := app.Remove(co, "web"); err != nil {
		t.Fatal(err)
	}
	if ls, _ := app.List(co); len(ls) != 0 {
		t.Errorf("List after rm = %v", ls)
	}
}

// TestAddFailsClean: an unreachable registry or a refused layer leaves
// the checkout as it was.
func TestAddFailsClean(t *testing.T) {
	needTools(t)
	co := t.TempDir()
	repo := t.TempDir()
	l, _ := ocitest.Layer(ocitest.Symlink("evil", "/"), ocitest.File("evil/escape", []byte("x"), 0o644))
	img, _ := ocitest.Image("linux/amd64", v1.Config{}, l)
	ocitest.WriteLayout(filepath.Join(repo, "bad"), "v1", img)
	for from, want := range map[string]error{
		"docker://127.0.0.1:1/pv/none:1": oci.ErrRegistry,
		"oci:" + repo + "/bad":           oci.ErrUnsafePath,
	} {
		_, err := app.Add(context.Background(), co, "web", from, nil, app.Options{Platform: "linux/amd64"})
		if !errors.Is(err, want) {
			t.Errorf("Add(%s) = %v, want %v", from, err, want)
		}
		if ents, _ := os.ReadDir(co); len(ents) != 0 {
			t.Errorf("Add(%s) left %v in the checkout", from, ents)
		}
	}
	if _, err := app.Add(context.Background(), co, "../x", "oci:/x", nil, app.Options{}); !errors.Is(err, app.ErrName) {
		t.Errorf("Add(../x) = %v, want %v", err, app.ErrName)
	}
}

// TestBuildRelative: a recipe's relative image path is the repository's.
func TestBuildRelative(t *testing.T) {
	needTools(t)
	repo := t.TempDir()
	ocitest.WriteLayout(filepath.Join(repo, "images", "web"), "v1", small(t, "x"))
	e, err := app.Build(context.Background(), t.TempDir(), "web", "oci:images/web:v1", repo, map[string]any{"PV_GROUP": "app"},
		app.Options{Platform: "linux/amd64", Comp: "gzip"})
	if err != nil {
		t.Fatal(err)
	}
	want := "web/lxc.container.conf web/root.squashfs web/root.squashfs.docker-digest web/run.json web/src.json"
	if got := strings.Join(e.Keys(), " "); got != want {
		t.Errorf("keys = %s, want %s", got, want)
	}
}
