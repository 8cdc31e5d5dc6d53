package oci_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/oci"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want oci.Source
		err  bool
	}{
		{"oci:/x/layout", oci.Source{Kind: oci.KindOCI, Path: "/x/layout"}, false},
		{"oci:rel/layout:v1", oci.Source{Kind: oci.KindOCI, Path: "rel/layout", Tag: "v1"}, false},
		{"docker-archive:/x/a.tar", oci.Source{Kind: oci.KindDockerArchive, Path: "/x/a.tar"}, false},
		{"docker://nginx:latest", oci.Source{Kind: oci.KindRegistry, Ref: "nginx:latest"}, false},
		{"nginx:latest", oci.Source{Kind: oci.KindRegistry, Ref: "nginx:latest"}, false},
		{"oci:", oci.Source{}, true},
		{"docker://UPPER/bad", oci.Source{}, true},
		{"/abs/path", oci.Source{}, true},
		{"http://x/y", oci.Source{}, true},
	} {
		got, err := oci.Parse(tc.in)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, oci.ErrSource) {
			t.Errorf("Parse(%q) error %v does not wrap ErrSource", tc.in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"oci:/a:b", "docker-archive:x", "docker://a/b:c", "a@sha256:00", "docker-daemon:web:v1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := oci.Parse(s)
		if err == nil && src.Kind == "" {
			t.Fatalf("Parse(%q) = %+v without a kind", s, src)
		}
	})
}

func marker(t *testing.T, platform string) v1.Image {
	t.Helper()
	l, err := ocitest.Layer(ocitest.File("arch", []byte(platform), 0o644))
	if err != nil {
		t.Fatal(err)
	}
	img, err := ocitest.Image(platform, v1.Config{Cmd: []string{"/bin/true"}}, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestMultiArch: an index resolves to the target's platform, armhf's
// variant included; an architecture the index lacks is a clear error.
func TestMultiArch(t *testing.T) {
	dir := t.TempDir()
	idx, err := ocitest.Index(marker(t, "linux/amd64"), marker(t, "linux/arm/v6"), marker(t, "linux/arm/v7"), marker(t, "linux/arm64/v8"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ocitest.WriteLayout(dir, "multi", idx); err != nil {
		t.Fatal(err)
	}
	for _, deb := range []string{"amd64", "armhf", "arm64"} {
		a, _ := arch.Lookup(deb)
		im, err := oci.Open(context.Background(), "oci:"+dir+":multi", a.OCIPlatform())
		if err != nil {
			t.Fatalf("%s: %v", deb, err)
		}
		if im.Platform != a.OCIPlatform() {
			t.Errorf("%s: platform %s, want %s", deb, im.Platform, a.OCIPlatform())
		}
		if deb == "armhf" && im.Platform != "linux/arm/v7" {
			t.Errorf("armhf resolved to %s, want linux/arm/v7", im.Platform)
		}
	}
	if _, err := oci.Open(context.Background(), "oci:"+dir+":multi", "linux/riscv64"); !errors.Is(err, oci.ErrPlatform) {
		t.Errorf("riscv64: %v, want %v", err, oci.ErrPlatform)
	}
	if _, err := oci.Open(context.Background(), "oci:"+dir+":nope", "linux/amd64"); err == nil {
		t.Errorf("unknown tag: no error")
	}
}

// TestRegistryUnreachable: a registry that does not answer gives one
// error naming the registry, and Convert never runs.
func TestRegistryUnreachable(t *testing.T) {
	for _, ref := range []string{"docker://127.0.0.1:1/pv/none:1", "docker://registry.invalid/pv/none:1"} {
		_, err := oci.Open(context.Background(), ref, "linux/amd64")
		if !errors.Is(err, oci.ErrRegistry) {
			t.Errorf("Open(%s) = %v, want %v", ref, err, oci.ErrRegistry)
		}
	}
}

// TestConvertReproducible: one image gives the same squashfs bytes from
// an OCI layout and from a docker save archive, twice.
func TestConvertReproducible(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root")
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs")
	}
	l1, _ := ocitest.Layer(ocitest.Dir("etc/"), ocitest.File("etc/a", []byte("a"), 0o644), ocitest.File("etc/b", []byte("b"), 0o4755),
		ocitest.Hardlink("etc/c", "etc/a"), ocitest.Symlink("lnk", "etc"))
	l2, _ := ocitest.Layer(ocitest.Whiteout("etc", "b"), ocitest.File("lnk/d", []byte("via link"), 0o600))
	img, err := ocitest.Image("linux/amd64", v1.Config{Cmd: []string{"/bin/sh"}}, l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ocitest.WriteLayout(filepath.Join(dir, "layout"), "v1", img)
	ocitest.WriteArchive(filepath.Join(dir, "a.tar"), "pv/test:v1", img)
	var outs [][]byte
	for i, src := range []string{"oci:" + dir + "/layout:v1", "oci:" + dir + "/layout", "docker-archive:" + dir + "/a.tar"} {
		im, err := oci.Open(context.Background(), src, "linux/amd64")
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out", src[:3]+string(rune('0'+i)), "root.squashfs")
		os.MkdirAll(filepath.Dir(out), 0o755)
		if err := oci.Convert(context.Background(), im, out, oci.Options{Comp: "gzip"}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		outs = append(outs, b)
		ents, _ := os.ReadDir(filepath.Dir(out))
		if len(ents) != 1 {
			t.Errorf("%s: convert left %v beside the squashfs", src, ents)
		}
	}
	for i := 1; i < len(outs); i++ {
		if !bytes.Equal(outs[0], outs[i]) {
			t.Errorf("squashfs %d differs from the first", i)
		}
	}
}

// TestRegistry: a docker:// source is read from a registry (an
// in-process one), with the multi-arch index resolved to armhf's v7.
func TestRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	idx, err := ocitest.Index(marker(t, "linux/amd64"), marker(t, "linux/arm/v7"), marker(t, "linux/arm/v6"))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/pv/multi:v1")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	// No credentials configured: the default keychain is anonymous.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	im, err := oci.Open(context.Background(), "docker://"+host+"/pv/multi:v1", "linux/arm/v7")
	if err != nil {
		t.Fatal(err)
	}
	if im.Platform != "linux/arm/v7" || im.Name != host+"/pv/multi" || im.Tag != "v1" {
		t.Errorf("Open = platform %s name %s tag %s", im.Platform, im.Name, im.Tag)
	}
	if _, err := oci.Open(context.Background(), "docker://"+host+"/pv/none:v1", "linux/amd64"); !errors.Is(err, oci.ErrRegistry) {
		t.Errorf("missing repository: %v, want %v", err, oci.ErrRegistry)
	}
}
