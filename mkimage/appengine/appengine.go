// Package appengine assembles the App Engine install package: a
// self-contained directory holding the runtime binaries built for one
// GOARCH, the default configuration, the storage skeleton, the trust store
// directory and an install script. After
//
//	<pkg>/install /opt/pantavisor
//
// the command /opt/pantavisor/pantavisor (a launcher exec'ing
// bin/pv-appengine -prefix /opt/pantavisor) runs Pantavisor in the
// foreground on the host.
//
//	err := appengine.Assemble(ctx, appengine.Options{Repo: ".", Out: "out/x64-appengine"})
//
// Layout of the package (and of an installed prefix):
//
//	install                               install script (package only)
//	bin/pantavisor                        daemon (cgo: links liblxc)
//	bin/pv-appengine                      boot loop (static)
//	bin/pvcontrol, bin/pvtx               static CLIs
//	bin/pventer                           enter a container (cgo)
//	etc/pantavisor-appengine.config       config template (@PREFIX@, @STORAGE@)
//	etc/pantavisor/pvs/trust/             signature trust stores
//	lib/pantavisor/skel/                  copied onto storage on first run
//	lib/pantavisor/pvtx.d/                packages of the initial revision
//	lib/pantavisor/pvtx.extra.d/          packages of a named initial revision
package appengine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// ErrBadArch is returned for a GOARCH the package cannot be built for.
var ErrBadArch = errors.New("unsupported GOARCH")

// Binary is one program of the package.
type Binary struct {
	Name string // file name under bin/
	Pkg  string // Go package, relative to the module root
	Cgo  bool   // needs cgo (liblxc)
}

// Binaries are the programs every package carries.
var Binaries = []Binary{
	{Name: "pantavisor", Pkg: "./runtime/cmd/pantavisor", Cgo: true},
	{Name: "pv-appengine", Pkg: "./runtime/cmd/pv-appengine"},
	{Name: "pvcontrol", Pkg: "./runtime/cmd/pvcontrol"},
	{Name: "pvtx", Pkg: "./runtime/cmd/pvtx"},
	{Name: "pventer", Pkg: "./runtime/cmd/pventer", Cgo: true},
}

// Options configure Assemble.
type Options struct {
	// Repo is the module root holding runtime/ ("" = current dir).
	Repo string
	// Out is the package directory; it is replaced atomically.
	Out string
	// GOARCH is the target (amd64 or arm64; "" = the host's).
	GOARCH string
	// CgoEnv, when set, is the environment of the cgo builds (pantavisor,
	// pventer) on top of CGO_ENABLED=1: the image builder passes its
	// cross setup (CC, a pkg-config lxc of the target's Debian sysroot),
	// so both pipelines cross-build the same way. nil = the host's liblxc
	// (native) or the Debian cross compiler with the host's pkg-config.
	CgoEnv []string
	// Log reports progress (nil = silent).
	Log *slog.Logger
}

// crossCC is the C compiler for cgo binaries per non-host GOARCH.
var crossCC = map[string]string{
	"arm64": "aarch64-linux-gnu-gcc",
	"amd64": "x86_64-linux-gnu-gcc",
}

// Assemble builds the binaries and writes the package into o.Out. Nothing
// is left half-written: the tree is built beside Out and renamed over it.
func Assemble(ctx context.Context, o Options) error {
	if o.Out == "" {
		return errors.New("appengine: no output directory")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.GOARCH == "" {
		o.GOARCH = runtime.GOARCH
	}
	if o.GOARCH != runtime.GOARCH && crossCC[o.GOARCH] == "" && o.CgoEnv == nil {
		return fmt.Errorf("%w %q (want amd64 or arm64)", ErrBadArch, o.GOARCH)
	}
	repo, err := filepath.Abs(o.Repo)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for _, b := range Binaries {
		o.Log.Info("build", "bin", b.Name, "goarch", o.GOARCH, "cgo", b.Cgo)
		if err := build(ctx, repo, o.GOARCH, o.CgoEnv, b, filepath.Join(tmp, "bin", b.Name)); err != nil {
			return err
		}
	}
	if err := writeTree(tmp); err != nil {
		return err
	}
	old := out + ".old"
	os.RemoveAll(old)
	if err := os.Rename(out, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// build runs go build -trimpath for one binary; cgoEnv (nil = defaults)
// is added to cgo builds.
func build(ctx context.Context, repo, goarch string, cgoEnv []string, b Binary, dst string) error {
	args := []string{"build", "-trimpath", "-ldflags=-s -w -buildid="}
	cmd := exec.CommandContext(ctx, "go", append(args, "-o", dst, b.Pkg)...)
	cmd.Dir = repo
	env := append(os.Environ(), "GOOS=linux", "GOARCH="+goarch)
	if b.Cgo {
		env = append(env, "CGO_ENABLED=1")
		if cgoEnv != nil {
			env = append(env, cgoEnv...)
		} else if goarch != runtime.GOARCH {
			env = append(env, "CC="+crossCC[goarch])
		}
	} else {
		env = append(env, "CGO_ENABLED=0")
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		hint := ""
		if cgoEnv == nil && strings.Contains(stderr.String(), "cannot find -llxc") {
			hint = fmt.Sprintf(" (liblxc for %s is missing: dpkg --add-architecture %s && apt-get install lxc-dev:%s)", goarch, goarch, goarch)
		}
		return fmt.Errorf("go build %s (GOARCH=%s)%s: %w: %s", b.Pkg, goarch, hint, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// writeTree writes everything but the binaries.
func writeTree(root string) error {
	for _, d := range []string{
		"etc/pantavisor/pvs/trust",
		"lib/pantavisor/skel/boot",
		"lib/pantavisor/skel/config",
		"lib/pantavisor/skel/cache",
		"lib/pantavisor/pvtx.d",
		"lib/pantavisor/pvtx.extra.d",
	} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	files := []struct {
		path string
		mode os.FileMode
		data string
	}{
		{"install", 0o755, InstallScript},
		{"etc/pantavisor-appengine.config", 0o644, DefaultConfig},
		{"lib/pantavisor/pvtx.d/00-empty.json", 0o644, `{"#spec":"pantavisor-service-system@1"}` + "\n"},
		{"README", 0o644, readme},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return nil
}

const readme = `Pantavisor App Engine

Install it with the install script, giving the prefix of your choice:

    sudo ./install /opt/pantavisor

then run Pantavisor in the foreground:

    sudo /opt/pantavisor/pantavisor -i
`
