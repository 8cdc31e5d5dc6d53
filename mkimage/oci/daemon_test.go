package oci_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pantavisor/pantavisor-go/mkimage/oci"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
)

// TestDaemon reads images from a Docker Engine API server on a unix
// socket (DOCKER_HOST): a bare name is :latest, the digest is the
// image's, a missing image and a missing engine give ErrDaemon with the
// engine's message.
func TestDaemon(t *testing.T) {
	l, err := ocitest.Layer(ocitest.File("hello", []byte("hi"), 0o644))
	if err != nil {
		t.Fatal(err)
	}
	img, err := ocitest.Image("linux/amd64", v1.Config{Cmd: []string{"/hello"}, User: "1:2"}, l)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "docker.sock")
	e, err := ocitest.ServeEngine(sock, map[string]v1.Image{"custom-nginx:latest": img, "pv/web:v2": img})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	ctx := context.Background()
	want, _ := img.Digest()
	for src, name := range map[string]string{"docker-daemon:custom-nginx": "custom-nginx", "docker-daemon:pv/web:v2": "pv/web"} {
		im, err := oci.Open(ctx, src, "linux/amd64")
		if err != nil {
			t.Fatalf("Open(%s): %v", src, err)
		}
		if im.Name != name || im.Config.User != "1:2" || im.Platform != "linux/amd64" {
			t.Errorf("Open(%s) = name %q user %q platform %q", src, im.Name, im.Config.User, im.Platform)
		}
		if im.Digest == "" || (src == "docker-daemon:pv/web:v2" && im.Digest != want.String()) {
			t.Errorf("Open(%s) digest %q, want %s", src, im.Digest, want)
		}
		root := t.TempDir()
		if err := oci.Stage(im, root); err != nil {
			t.Fatalf("Stage(%s): %v", src, err)
		}
	}
	_, err = oci.Open(ctx, "docker-daemon:nope:v1", "linux/amd64")
	if !errors.Is(err, oci.ErrDaemon) || !strings.Contains(err.Error(), "reference does not exist") {
		t.Errorf("missing image: %v, want ErrDaemon with the engine's message", err)
	}
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	if _, err = oci.Open(ctx, "docker-daemon:pv/web:v2", "linux/amd64"); !errors.Is(err, oci.ErrDaemon) {
		t.Errorf("no engine: %v, want ErrDaemon", err)
	}
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
	if _, err = oci.Open(ctx, "docker-daemon:pv/web:v2", "linux/amd64"); !errors.Is(err, oci.ErrDaemon) || !strings.Contains(err.Error(), "unix://") {
		t.Errorf("tcp DOCKER_HOST: %v, want ErrDaemon naming unix://", err)
	}
}
