// Package ocitest builds container images for tests: layers from tar
// entries, images with a config and platform, multi-arch indexes, OCI
// layouts and docker save archives, all with go-containerregistry.
//
//	l, _ := ocitest.Layer(ocitest.File("etc/motd", "hi", 0o644))
//	img, _ := ocitest.Image("linux/amd64", v1.Config{Cmd: []string{"/bin/sh"}}, l)
//	err := ocitest.WriteLayout(dir, "v1", img)
package ocitest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Entry is one tar entry of a layer.
type Entry struct {
	Name, Link string
	Body       []byte
	Type       byte
	Mode       int64
	UID        int
}

// File, Dir, Symlink, Hardlink and Whiteout make entries.
func File(n string, body []byte, mode int64) Entry {
	return Entry{Name: n, Body: body, Type: tar.TypeReg, Mode: mode}
}
func Dir(n string) Entry           { return Entry{Name: n, Type: tar.TypeDir, Mode: 0o755} }
func Symlink(n, to string) Entry   { return Entry{Name: n, Link: to, Type: tar.TypeSymlink, Mode: 0o777} }
func Hardlink(n, to string) Entry  { return Entry{Name: n, Link: to, Type: tar.TypeLink, Mode: 0o644} }
func Whiteout(dir, n string) Entry { return File(dir+"/.wh."+n, nil, 0o644) }
func Opaque(dir string) Entry      { return File(dir+"/.wh..wh..opq", nil, 0o644) }

// Tar is the uncompressed tar of entries.
func Tar(es ...Entry) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := &tar.Header{Name: e.Name, Linkname: e.Link, Typeflag: e.Type, Mode: e.Mode, Uid: e.UID, Gid: e.UID}
		if e.Type == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.Body); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), tw.Close()
}

// Layer is a gzipped layer of entries.
func Layer(es ...Entry) (v1.Layer, error) {
	b, err := Tar(es...)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// Image is an image of platform (os/arch[/variant]) with cfg and layers.
func Image(platform string, cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant, cf.Config = p.OS, p.Architecture, p.Variant, cfg
	return mutate.ConfigFile(img, cf)
}

// Index is a multi-arch index of images (platforms from their configs).
func Index(imgs ...v1.Image) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), nil
}

// WriteLayout writes an OCI layout at dir holding x (a v1.Image or
// v1.ImageIndex) under tag (org.opencontainers.image.ref.name).
func WriteLayout(dir, tag string, x any) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return err
		}
	}
	opt := layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})
	switch v := x.(type) {
	case v1.Image:
		return p.AppendImage(v, opt)
	case v1.ImageIndex:
		return p.AppendIndex(v, opt)
	}
	return fmt.Errorf("ocitest: %T is not an image or index", x)
}

// WriteArchive writes img as a docker save tarball tagged ref.
func WriteArchive(file, ref string, img v1.Image) error {
	t, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return tarball.Write(t, img, f)
}
