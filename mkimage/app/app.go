// Package app is pvr's app workflow on a checkout directory, for
// containers made from images: add converts an image into
// <name>/{root.squashfs, root.squashfs.docker-digest, lxc.container.conf,
// run.json, src.json}; update follows the image's tag; install re-renders
// after src.json edits (and converts again only when the recorded digest
// differs from the squashfs's); ls and rm list and remove apps. The image
// builder's [[containers]] image = … entries use the same Add.
//
//	src, err := app.Add(ctx, checkout, "web", "docker://nginx:latest",
//		map[string]any{"PV_GROUP": "app"}, app.Options{Platform: "linux/arm/v7"})
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/container"
	"github.com/pantavisor/pantavisor-go/mkimage/oci"
	"github.com/pantavisor/pantavisor-go/mkimage/pvrtemplate"
	"github.com/pantavisor/pantavisor-go/mkimage/squashfs"
)

// Files of an app directory.
const (
	SrcFile    = "src.json"
	RunFile    = "run.json"
	ConfFile   = "lxc.container.conf"
	RootFile   = "root.squashfs"
	DigestFile = "root.squashfs.docker-digest"
)

// Errors callers test with errors.Is.
var (
	ErrExists     = errors.New("app already exists")
	ErrNotApp     = errors.New("not an app (no src.json)")
	ErrName       = errors.New("bad app name")
	ErrImageMoved = errors.New("the image no longer has the recorded digest")
)

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Options configure the conversion.
type Options struct {
	// Platform is os/arch[/variant] (arch.OCIPlatform); "" reads the
	// checkout's _hostconfig/pvr/docker.json, else linux/amd64.
	Platform string
	// Epoch stamps the squashfs (0: the image's creation time).
	Epoch int64
	// Comp is the squashfs compressor (default xz).
	Comp string
}

func checkName(name string) error {
	if !nameRe.MatchString(name) || name == "bsp" || strings.HasPrefix(name, "_") {
		return fmt.Errorf("%w %q", ErrName, name)
	}
	return nil
}

// platform picks the conversion platform for a checkout.
func platform(dir string, o Options) string {
	if o.Platform != "" {
		return o.Platform
	}
	var hc struct {
		Platforms []string `json:"platforms"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "_hostconfig", "pvr", "docker.json")); err == nil && json.Unmarshal(b, &hc) == nil && len(hc.Platforms) > 0 {
		return hc.Platforms[0]
	}
	return "linux/amd64"
}

// digestOf is the docker_digest pvr records: name@sha256:… for a
// registry image, the bare digest for a local one.
func digestOf(im *oci.Image) string {
	if im.Source.Kind == oci.KindRegistry {
		return im.Name + "@" + im.Digest
	}
	return im.Digest
}

// Add converts the image from into dir/name with the template args.
// Nothing is written unless every file is made.
func Add(ctx context.Context, dir, name, from string, args map[string]any, o Options) (pvrtemplate.Src, error) {
	if err := checkName(name); err != nil {
		return pvrtemplate.Src{}, err
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		return pvrtemplate.Src{}, fmt.Errorf("app %s: %w", name, ErrExists)
	}
	im, err := oci.Open(ctx, from, platform(dir, o))
	if err != nil {
		return pvrtemplate.Src{}, fmt.Errorf("app %s: %w", name, err)
	}
	src := pvrtemplate.Src{Template: pvrtemplate.Builtin, Args: args, Persistence: map[string]string{}}
	record(&src, im)
	return src, write(ctx, dir, name, src, im, o)
}

// record copies the image's facts into src.
func record(src *pvrtemplate.Src, im *oci.Image) {
	c := im.Config
	src.DockerConfig = pvrtemplate.Config{User: c.User, ExposedPorts: c.ExposedPorts, Env: c.Env, Entrypoint: c.Entrypoint,
		Cmd: c.Cmd, Volumes: c.Volumes, WorkingDir: c.WorkingDir}
	src.DockerName, src.DockerTag, src.DockerDigest, src.DockerPlatform = im.Name, im.Tag, digestOf(im), im.Platform
	switch im.Source.Kind {
	case oci.KindRegistry:
		src.DockerSource = "remote"
	case oci.KindDaemon:
		src.DockerSource = "local" // pvr's word for the Docker engine's store
	default:
		src.DockerSource = im.Source.Kind
	}
}

// sourceOf is the image source src.json points at: pinned to the
// recorded digest (install) or following the tag (update).
func sourceOf(src pvrtemplate.Src, pinned bool) (string, error) {
	n := src.DockerName
	switch {
	case strings.HasPrefix(n, oci.KindOCI+":"), strings.HasPrefix(n, oci.KindDockerArchive+":"):
		if src.DockerTag != "" {
			return n + ":" + src.DockerTag, nil
		}
		return n, nil
	case n == "":
		return "", fmt.Errorf("src.json has no docker_name")
	case src.DockerSource == "local":
		// The engine exports by tag; install compares the digest.
		return oci.KindDaemon + ":" + n + ":" + or(src.DockerTag, "latest"), nil
	case pinned && src.DockerDigest != "":
		d := src.DockerDigest
		if _, h, ok := strings.Cut(d, "@"); ok {
			d = h
		}
		return "docker://" + n + "@" + d, nil
	default:
		return "docker://" + n + ":" + or(src.DockerTag, "latest"), nil
	}
}

func or(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

// Read reads dir/name/src.json.
func Read(dir, name string) (pvrtemplate.Src, error) {
	var src pvrtemplate.Src
	if err := checkName(name); err != nil {
		return src, err
	}
	b, err := os.ReadFile(filepath.Join(dir, name, SrcFile))
	if errors.Is(err, os.ErrNotExist) {
		return src, fmt.Errorf("app %s: %w", name, ErrNotApp)
	}
	if err != nil {
		return src, fmt.Errorf("app %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &src); err != nil {
		return src, fmt.Errorf("app %s: %w", name, err)
	}
	return src, nil
}

// Install re-renders run.json and lxc.container.conf from src.json, and
// converts the image again (pinned to docker_digest) when root.squashfs
// is missing or was made from another digest.
func Install(ctx context.Context, dir, name string, o Options) error {
	src, err := Read(dir, name)
	if err != nil {
		return err
	}
	have, _ := os.ReadFile(filepath.Join(dir, name, DigestFile))
	_, rootErr := os.Stat(filepath.Join(dir, name, RootFile))
	if rootErr == nil && strings.TrimSpace(string(have)) == src.DockerDigest {
		return write(ctx, dir, name, src, nil, o)
	}
	from, err := sourceOf(src, true)
	if err != nil {
		return fmt.Errorf("app %s: %w", name, err)
	}
	im, err := oci.Open(ctx, from, or(src.DockerPlatform, platform(dir, o)))
	if err != nil {
		return fmt.Errorf("app %s: %w", name, err)
	}
	if digestOf(im) != src.DockerDigest && src.DockerDigest != "" {
		return fmt.Errorf("app %s: %w: %s is %s, src.json says %s (use update)", name, ErrImageMoved, from, digestOf(im), src.DockerDigest)
	}
	record(&src, im)
	return write(ctx, dir, name, src, im, o)
}

// Update follows the image's tag: a new digest is converted and
// recorded; the args and persistence of src.json stay.
func Update(ctx context.Context, dir, name string, o Options) (changed bool, err error) {
	src, err := Read(dir, name)
	if err != nil {
		return false, err
	}
	from, err := sourceOf(src, false)
	if err != nil {
		return false, fmt.Errorf("app %s: %w", name, err)
	}
	im, err := oci.Open(ctx, from, or(src.DockerPlatform, platform(dir, o)))
	if err != nil {
		return false, fmt.Errorf("app %s: %w", name, err)
	}
	changed = digestOf(im) != src.DockerDigest
	record(&src, im)
	return changed, write(ctx, dir, name, src, im, o)
}

// List returns the apps of a checkout: directories with a src.json.
func List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("apps: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() || checkName(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), SrcFile)); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Remove deletes an app's directory.
func Remove(dir, name string) error {
	if _, err := Read(dir, name); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(dir, name))
}

// write renders src into a staging directory beside dir/name and
// converts im there when given (else keeps the current squashfs and
// digest file); only then are the files moved into dir/name.
func write(ctx context.Context, dir, name string, src pvrtemplate.Src, im *oci.Image, o Options) error {
	stage, err := os.MkdirTemp(dir, "."+name+".new-")
	if err != nil {
		return fmt.Errorf("app %s: %w", name, err)
	}
	defer os.RemoveAll(stage)
	final := filepath.Join(dir, name)
	var acc pvrtemplate.Accounts
	if im != nil {
		staged := func(root string) error {
			if src.DockerConfig.User != "" {
				acc, err = readAccounts(root)
			}
			return err
		}
		if err := oci.Convert(ctx, im, filepath.Join(stage, RootFile), oci.Options{Comp: o.Comp, Epoch: o.Epoch, Staged: staged}); err != nil {
			return fmt.Errorf("app %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(stage, DigestFile), []byte(src.DockerDigest), 0o644); err != nil {
			return err
		}
	} else {
		for _, k := range []string{RootFile, DigestFile} {
			if err := os.Link(filepath.Join(final, k), filepath.Join(stage, k)); err != nil {
				return fmt.Errorf("app %s: keep %s: %w", name, k, err)
			}
		}
		if src.DockerConfig.User != "" {
			root := filepath.Join(stage, "accounts")
			if err := extractAccounts(ctx, filepath.Join(stage, RootFile), root); err != nil {
				return fmt.Errorf("app %s: %w", name, err)
			}
			if acc, err = readAccounts(root); err != nil {
				return fmt.Errorf("app %s: %w", name, err)
			}
		}
	}
	f, err := pvrtemplate.Render(name, src, pvrtemplate.Options{Accounts: acc})
	if err != nil {
		return fmt.Errorf("app %s: %w", name, err)
	}
	srcJSON, err := json.Marshal(src)
	if err != nil {
		return err
	}
	files := map[string][]byte{SrcFile: append(srcJSON, '\n'), RunFile: append(f.RunJSON, '\n')}
	if f.LXCConf != nil {
		files[ConfFile] = f.LXCConf
	}
	for k, b := range files {
		if err := os.WriteFile(filepath.Join(stage, k), b, 0o644); err != nil {
			return fmt.Errorf("app %s: %w", name, err)
		}
	}
	// Everything is made: move the files in, one rename each (files of
	// the app dir this package does not make stay).
	if err := os.MkdirAll(final, 0o755); err != nil {
		return fmt.Errorf("app %s: %w", name, err)
	}
	for _, k := range []string{RootFile, DigestFile, ConfFile, RunFile, SrcFile} {
		err := os.Rename(filepath.Join(stage, k), filepath.Join(final, k))
		if errors.Is(err, os.ErrNotExist) && k == ConfFile {
			err = os.Remove(filepath.Join(final, k)) // a data container has none
			if errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("app %s: %w", name, err)
		}
	}
	return nil
}

// readAccounts reads the image's /etc/passwd and /etc/group from its
// root (a missing one is empty), for a named image User.
func readAccounts(root string) (pvrtemplate.Accounts, error) {
	var acc pvrtemplate.Accounts
	for p, b := range map[string]*[]byte{"etc/passwd": &acc.Passwd, "etc/group": &acc.Group} {
		v, err := oci.ReadInRoot(root, p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return acc, err
		}
		*b = v
	}
	return acc, nil
}

// extractAccounts unpacks etc/passwd and etc/group of the squashfs sq
// into root, with the files their symbolic links name (unsquashfs's own
// -follow-symlinks does not resolve absolute links).
func extractAccounts(ctx context.Context, sq, root string) error {
	for _, p := range []string{"etc/passwd", "etc/group"} {
		for hop := 0; hop < 16; hop++ {
			if err := squashfs.Extract(ctx, sq, root, p); err != nil {
				return err
			}
			t, err := os.Readlink(filepath.Join(root, p))
			if err != nil {
				break // a file, or missing
			}
			if path.IsAbs(t) {
				p = path.Clean(t[1:])
			} else {
				p = path.Join(path.Dir(p), t)
			}
			if p == "." || p == ".." || strings.HasPrefix(p, "../") {
				break // ReadInRoot resolves it inside root, to nothing
			}
		}
	}
	return nil
}

// Entries are the state entries of dir/name for a revision: the files as
// objects, run.json and src.json inline (as pvr commits them).
func Entries(dir, name string) (container.Entries, error) {
	e := container.NewEntries()
	for _, k := range []string{RootFile, DigestFile, ConfFile} {
		p := filepath.Join(dir, name, k)
		if _, err := os.Stat(p); err == nil {
			e.Objects[name+"/"+k] = p
		}
	}
	for _, k := range []string{RunFile, SrcFile} {
		b, err := os.ReadFile(filepath.Join(dir, name, k))
		if err != nil {
			return e, fmt.Errorf("app %s: %w", name, err)
		}
		var v json.RawMessage
		if err := json.Unmarshal(b, &v); err != nil {
			return e, fmt.Errorf("app %s: %s: %w", name, k, err)
		}
		e.Inline[name+"/"+k] = v
	}
	return e, nil
}

// Build makes an image container for a revision, as a recipe's
// [[containers]] image = … asks: local image paths relative to repo,
// dir/name replaced. It returns the app's state entries.
func Build(ctx context.Context, dir, name, image, repo string, args map[string]any, o Options) (container.Entries, error) {
	s, err := oci.Parse(image)
	if err != nil {
		return container.NewEntries(), fmt.Errorf("app %s: %w", name, err)
	}
	if s.Path != "" && !filepath.IsAbs(s.Path) {
		s.Path = filepath.Join(repo, s.Path)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return container.NewEntries(), err
	}
	if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
		return container.NewEntries(), err
	}
	if _, err := Add(ctx, dir, name, s.String(), args, o); err != nil {
		return container.NewEntries(), err
	}
	return Entries(dir, name)
}
