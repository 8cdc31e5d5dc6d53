// Package oci turns container images (OCI image layouts, docker save
// tarballs, registry images) into a Pantavisor container's root.squashfs:
// it resolves a source for the target platform, flattens the layers
// itself (whiteouts, opaque directories, hard links, device nodes,
// xattrs; no path may leave the root) and packs the tree with mksquashfs,
// reproducibly (one image digest, one squashfs).
//
//	img, err := oci.Open(ctx, "docker://nginx:latest", "linux/arm/v7")
//	res, err := oci.Convert(ctx, img, "webserver/root.squashfs", oci.Options{})
//	// img.Digest, img.Config (Entrypoint, Cmd, Env …) feed src.json
package oci

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Source kinds (the prefix of a source string).
const (
	KindOCI           = "oci"
	KindDockerArchive = "docker-archive"
	KindRegistry      = "docker"
)

// Errors callers may test with errors.Is.
var (
	// ErrSource is a source string Parse does not understand.
	ErrSource = errors.New("bad image source")
	// ErrPlatform means the image has no manifest for the platform.
	ErrPlatform = errors.New("image has no manifest for the platform")
	// ErrRegistry wraps every failure to reach or read a registry.
	ErrRegistry = errors.New("cannot fetch the image from the registry")
)

// Source is a parsed image source.
type Source struct {
	Kind string
	// Path is the layout directory or the archive file (oci,
	// docker-archive); Ref the image reference (docker).
	Path, Ref string
	// Tag selects an image in a layout (ref.name annotation) or archive
	// (repo:tag); "" takes the only one.
	Tag string
}

// String is the source in the form Parse reads.
func (s Source) String() string {
	switch s.Kind {
	case KindRegistry:
		return "docker://" + s.Ref
	case KindDaemon:
		return KindDaemon + ":" + s.Ref
	default:
		if s.Tag != "" {
			return s.Kind + ":" + s.Path + ":" + s.Tag
		}
		return s.Kind + ":" + s.Path
	}
}

// Parse reads oci:<dir>[:tag], docker-archive:<file>[:repo:tag],
// docker://<ref> and docker-daemon:<ref> (the local Docker engine). A bare reference (nginx:latest, as pvr's --from takes)
// is a registry image.
func Parse(s string) (Source, error) {
	switch {
	case strings.HasPrefix(s, "docker://"):
		return Source{Kind: KindRegistry, Ref: strings.TrimPrefix(s, "docker://")}, checkRef(s)
	case strings.HasPrefix(s, KindDaemon+":"):
		r := strings.TrimPrefix(s, KindDaemon+":")
		return Source{Kind: KindDaemon, Ref: r}, checkRef(r)
	case strings.HasPrefix(s, "oci:"):
		p, tag, _ := strings.Cut(strings.TrimPrefix(s, "oci:"), ":")
		if p == "" {
			return Source{}, fmt.Errorf("%w %q: no layout directory", ErrSource, s)
		}
		return Source{Kind: KindOCI, Path: p, Tag: tag}, nil
	case strings.HasPrefix(s, "docker-archive:"):
		p, tag, _ := strings.Cut(strings.TrimPrefix(s, "docker-archive:"), ":")
		if p == "" {
			return Source{}, fmt.Errorf("%w %q: no archive file", ErrSource, s)
		}
		return Source{Kind: KindDockerArchive, Path: p, Tag: tag}, nil
	case s != "" && !strings.Contains(s, "://") && !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "."):
		return Source{Kind: KindRegistry, Ref: s}, checkRef("docker://" + s)
	}
	return Source{}, fmt.Errorf("%w %q (want oci:<dir>[:tag], docker-archive:<file>, docker://<ref> or docker-daemon:<ref>)", ErrSource, s)
}

func checkRef(s string) error {
	if _, err := name.ParseReference(strings.TrimPrefix(s, "docker://")); err != nil {
		return fmt.Errorf("%w %q: %w", ErrSource, s, err)
	}
	return nil
}

// Image is a resolved image: one platform's manifest.
type Image struct {
	Source Source
	// Name and Tag are the repository and tag (src.json docker_name,
	// docker_tag); Digest the manifest digest (sha256:…).
	Name, Tag, Digest string
	// Platform is the image's platform (os/arch[/variant]).
	Platform string
	Config   v1.Config
	img      v1.Image
}

// Open resolves src for platform (os/arch[/variant], as arch.OCIPlatform
// gives), reading only the manifest and config: layers are read by
// Convert. Registry images use the user's Docker credentials
// (~/.docker/config.json, credential helpers) when there are any.
func Open(ctx context.Context, src string, platform string) (*Image, error) {
	s, err := Parse(src)
	if err != nil {
		return nil, err
	}
	want, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrPlatform, platform, err)
	}
	im := &Image{Source: s}
	switch s.Kind {
	case KindOCI:
		im.Name, im.Tag = "oci:"+s.Path, s.Tag
		im.img, err = fromLayout(s, *want)
	case KindDockerArchive:
		im.Name, im.Tag = "docker-archive:"+s.Path, s.Tag
		im.img, err = fromArchive(s)
	case KindRegistry:
		im.img, im.Name, im.Tag, err = fromRegistry(ctx, s, *want)
	case KindDaemon:
		im.img, im.Name, im.Tag, err = fromDaemon(ctx, s)
	}
	if err != nil {
		return nil, err
	}
	return im, im.describe(*want)
}

func (im *Image) describe(want v1.Platform) error {
	d, err := im.img.Digest()
	if err != nil {
		return fmt.Errorf("image %s: digest: %w", im.Source, err)
	}
	im.Digest = d.String()
	cf, err := im.img.ConfigFile()
	if err != nil {
		return fmt.Errorf("image %s: config: %w", im.Source, err)
	}
	got := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if !matches(got, want) {
		return fmt.Errorf("image %s: %w %s (it is %s)", im.Source, ErrPlatform, want.String(), got.String())
	}
	im.Platform = got.String()
	im.Config = cf.Config
	return nil
}

// matches tells whether an image of platform got runs on want: same OS
// and architecture, and the variant wanted (an image without a variant
// is taken for any).
func matches(got, want v1.Platform) bool {
	if got.OS != want.OS || got.Architecture != want.Architecture {
		return false
	}
	return got.Variant == "" || want.Variant == "" || got.Variant == want.Variant
}

// pick chooses the manifest of an index for want, exact variant first.
func pick(idx v1.ImageIndex, want v1.Platform) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var loose *v1.Descriptor
	var have []string
	for i := range m.Manifests {
		d := &m.Manifests[i]
		if d.Platform == nil {
			continue
		}
		have = append(have, d.Platform.String())
		if d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture && d.Platform.Variant == want.Variant {
			return idx.Image(d.Digest)
		}
		if loose == nil && matches(*d.Platform, want) {
			loose = d
		}
	}
	if loose != nil {
		return idx.Image(loose.Digest)
	}
	return nil, fmt.Errorf("%w %s (it has %s)", ErrPlatform, want.String(), strings.Join(have, ", "))
}

const refName = "org.opencontainers.image.ref.name"

func fromLayout(s Source, want v1.Platform) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(s.Path)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", s.Path, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", s.Path, err)
	}
	var cands []v1.Descriptor
	for _, d := range m.Manifests {
		if s.Tag == "" || d.Annotations[refName] == s.Tag {
			cands = append(cands, d)
		}
	}
	if len(cands) != 1 {
		return nil, fmt.Errorf("oci layout %s: %d images match tag %q (name one with oci:<dir>:<tag>)", s.Path, len(cands), s.Tag)
	}
	d := cands[0]
	var img v1.Image
	if d.MediaType.IsIndex() {
		sub, err := idx.ImageIndex(d.Digest)
		if err == nil {
			img, err = pick(sub, want)
		}
		if err != nil {
			return nil, fmt.Errorf("oci layout %s: %w", s.Path, err)
		}
		return img, nil
	}
	img, err = idx.Image(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", s.Path, err)
	}
	return img, nil
}

func fromArchive(s Source) (v1.Image, error) {
	var tag *name.Tag
	if s.Tag != "" {
		t, err := name.NewTag(s.Tag)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %w", ErrSource, s, err)
		}
		tag = &t
	}
	img, err := tarball.ImageFromPath(s.Path, tag)
	if err != nil {
		return nil, fmt.Errorf("docker archive %s: %w", s.Path, err)
	}
	return img, nil
}

func fromRegistry(ctx context.Context, s Source, want v1.Platform) (v1.Image, string, string, error) {
	ref, err := name.ParseReference(s.Ref)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w %s: %w", ErrSource, s, err)
	}
	tag := ""
	if t, ok := ref.(name.Tag); ok {
		tag = t.TagStr()
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithPlatform(want))
	if err != nil {
		return nil, "", "", fmt.Errorf("%w %s: %w", ErrRegistry, ref, err)
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, "", "", fmt.Errorf("%w %s: %w", ErrRegistry, ref, err)
		}
		img, err = pick(idx, want)
		if err != nil {
			return nil, "", "", fmt.Errorf("image %s: %w", ref, err)
		}
	} else if img, err = desc.Image(); err != nil {
		return nil, "", "", fmt.Errorf("%w %s: %w", ErrRegistry, ref, err)
	}
	return img, ref.Context().Name(), tag, nil
}
