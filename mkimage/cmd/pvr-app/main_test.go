package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
)

// TestCLI runs the verbs in-process on a checkout.
func TestCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root")
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs")
	}
	repo, co := t.TempDir(), t.TempDir()
	l, _ := ocitest.Layer(ocitest.File("x", []byte("x"), 0o644))
	img, _ := ocitest.Image("linux/arm/v7", v1.Config{Cmd: []string{"/x"}}, l)
	ocitest.WriteArchive(filepath.Join(repo, "a.tar"), "pv/x:v1", img)
	os.MkdirAll(filepath.Join(co, "_hostconfig", "pvr"), 0o755)
	os.WriteFile(filepath.Join(co, "_hostconfig", "pvr", "docker.json"), []byte(`{"platforms":["linux/arm/v7"]}`), 0o644)
	os.WriteFile(filepath.Join(repo, "args.json"), []byte(`{"PV_DRIVERS_REQUIRED":["wifi"],"PV_GROUP":"root"}`), 0o644)
	do := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"-C", co}, args...), &out, &errb)
		return out.String() + errb.String(), err
	}
	if out, err := do("app", "add", "--from", "docker-archive:"+repo+"/a.tar", "--arg", "PV_GROUP=app", "--arg", `PV_ROLES=["mgmt"]`,
		"--arg-json", repo+"/args.json", "--comp", "gzip", "web"); err != nil || !strings.Contains(out, "linux/arm/v7") {
		t.Fatalf("add = %q, %v", out, err)
	}
	run, _ := os.ReadFile(filepath.Join(co, "web", "run.json"))
	for _, s := range []string{`"group": "app"`, `"mgmt"`, `"wifi"`} {
		if !strings.Contains(string(run), s) {
			t.Errorf("run.json lacks %s: %s", s, run)
		}
	}
	if out, err := do("ls"); err != nil || out != "web\n" {
		t.Errorf("ls = %q, %v", out, err)
	}
	if out, err := do("info", "web"); err != nil || !strings.Contains(out, `"docker_platform":"linux/arm/v7"`) {
		t.Errorf("info = %q, %v", out, err)
	}
	if out, err := do("update", "web"); err != nil || out != "web: up to date\n" {
		t.Errorf("update = %q, %v", out, err)
	}
	if out, err := do("install", "web"); err != nil {
		t.Errorf("install = %q, %v", out, err)
	}
	if out, err := do("export", filepath.Join(repo, "web.tgz"), "web"); err != nil {
		t.Errorf("export = %q, %v", out, err)
	}
	if _, err := do("add", "--from", "nginx:latest", "--source", "elsewhere", "x"); err == nil {
		t.Error("add --source elsewhere succeeded")
	}
	if out, err := do("rm", "web"); err != nil {
		t.Errorf("rm = %q, %v", out, err)
	}
	if out, _ := do("ls"); out != "" {
		t.Errorf("ls after rm = %q", out)
	}
	// A relative local source is recorded absolute, for install and
	// update from anywhere.
	t.Chdir(repo)
	if out, err := do("add", "--from", "docker-archive:a.tar", "--comp", "gzip", "rel"); err != nil {
		t.Fatalf("add relative = %q, %v", out, err)
	}
	if out, _ := do("info", "rel"); !strings.Contains(out, `"docker_name":"docker-archive:`+repo+`/a.tar"`) {
		t.Errorf("info rel = %s, want the absolute archive path", out)
	}
}

// TestSourceLocal: --source local reads a bare reference from the Docker
// engine (a fake Engine API server on a unix socket, DOCKER_HOST);
// remote,local falls back to the engine when the registry cannot be
// reached; install and update follow the local image; a name the engine
// lacks fails with its message and writes nothing.
func TestSourceLocal(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root")
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs")
	}
	l, _ := ocitest.Layer(ocitest.File("x", []byte("x"), 0o644))
	img, _ := ocitest.Image("linux/amd64", v1.Config{Cmd: []string{"/x"}}, l)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	// localhost:1 refuses connections at once: the registry is unreachable.
	e, err := ocitest.ServeEngine(sock, map[string]v1.Image{"custom-nginx:latest": img, "localhost:1/pv/x:v1": img})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	co := t.TempDir()
	do := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"-C", co}, args...), &out, &errb)
		return out.String() + errb.String(), err
	}
	if out, err := do("app", "add", "--from", "custom-nginx", "--source", "local", "--comp", "gzip", "webserver"); err != nil {
		t.Fatalf("add --source local = %q, %v", out, err)
	}
	if out, _ := do("info", "webserver"); !strings.Contains(out, `"docker_name":"custom-nginx"`) || !strings.Contains(out, `"docker_source":"local"`) ||
		!strings.Contains(out, `"docker_tag":"latest"`) {
		t.Errorf("info = %s", out)
	}
	if out, err := do("update", "--comp", "gzip", "webserver"); err != nil || out != "webserver: up to date\n" {
		t.Errorf("update = %q, %v", out, err)
	}
	os.Remove(filepath.Join(co, "webserver", "root.squashfs"))
	if out, err := do("install", "--comp", "gzip", "webserver"); err != nil {
		t.Errorf("install without root.squashfs = %q, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(co, "webserver", "root.squashfs")); err != nil {
		t.Errorf("install did not convert again: %v", err)
	}
	out, err := do("add", "--from", "localhost:1/pv/x:v1", "--comp", "gzip", "fallback")
	if err != nil {
		t.Fatalf("add remote,local = %q, %v", out, err)
	}
	if out, _ := do("info", "fallback"); !strings.Contains(out, `"docker_source":"local"`) {
		t.Errorf("fallback info = %s, want docker_source local", out)
	}
	_, err = do("add", "--from", "localhost:1/pv/none:v1", "--comp", "gzip", "none")
	if err == nil || !strings.Contains(err.Error(), "reference does not exist") || !strings.Contains(err.Error(), "registry") {
		t.Errorf("add of a missing image = %v, want both sources' errors", err)
	}
	if _, err := os.Stat(filepath.Join(co, "none")); err == nil {
		t.Error("a failed add left none/")
	}
}
