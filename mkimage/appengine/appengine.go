// Package appengine assembles the App Engine install package: a
// self-contained directory holding the runtime binaries built for one
// architecture, the default configuration, the storage skeleton, the trust store
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
//	bin/pvcontrol, bin/pvtx, bin/pvcurl   static CLIs
//	bin/pvr-sdk                           static, for the pvr-sdk container
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
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
)

// ErrBadArch is returned for an architecture the package cannot be
// built for.
var ErrBadArch = errors.New("unsupported architecture")

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
	{Name: "pvcurl", Pkg: "./runtime/cmd/pvcurl"},
	{Name: "pventer", Pkg: "./runtime/cmd/pventer", Cgo: true},
	// pvr-sdk goes into the pvr-sdk fixture container (runtime/pvtest).
	{Name: "pvr-sdk", Pkg: "./runtime/cmd/pvr-sdk"},
}

// Options configure Assemble.
type Options struct {
	// Repo is the module root holding runtime/ ("" = current dir).
	Repo string
	// Out is the package directory; it is replaced atomically.
	Out string
	// Arch is the Debian architecture of the target (mkimage/arch; "" =
	// the host's).
	Arch string
	// CgoEnv, when set, is the environment of the cgo builds (pantavisor,
	// pventer) on top of CGO_ENABLED=1: the image builder passes its
	// cross setup (CC, a pkg-config lxc of the target's Debian sysroot),
	// so both pipelines cross-build the same way. nil = the host's liblxc
	// (native) or the Debian cross compiler with the host's pkg-config.
	CgoEnv []string
	// Log reports progress (nil = silent).
	Log *slog.Logger
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
	a, err := arch.Host()
	if o.Arch != "" {
		a, err = arch.Lookup(o.Arch)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadArch, err)
	}
	if !a.Native() && o.CgoEnv == nil {
		if _, err := exec.LookPath(a.CC()); err != nil {
			return fmt.Errorf("%w %s: cgo needs %s (Debian: %s)", ErrBadArch, a.Debian, a.CC(), a.CCPackage())
		}
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
		o.Log.Info("build", "bin", b.Name, "arch", a.Debian, "cgo", b.Cgo)
		if err := build(ctx, repo, a, o.CgoEnv, b, filepath.Join(tmp, "bin", b.Name)); err != nil {
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
func build(ctx context.Context, repo string, a arch.Arch, cgoEnv []string, b Binary, dst string) error {
	args := []string{"build", "-trimpath", "-ldflags=-s -w -buildid="}
	cmd := exec.CommandContext(ctx, "go", append(args, "-o", dst, b.Pkg)...)
	cmd.Dir = repo
	env := append(os.Environ(), a.GoEnv()...)
	if b.Cgo {
		env = append(env, "CGO_ENABLED=1")
		if cgoEnv != nil {
			env = append(env, cgoEnv...)
		} else if !a.Native() {
			env = append(env, "CC="+a.CC())
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
			hint = fmt.Sprintf(" (liblxc for %s is missing: dpkg --add-architecture %s && apt-get install lxc-dev:%s %s)", a.Debian, a.Debian, a.Debian, a.CCPackage())
		}
		return fmt.Errorf("go build %s (%s)%s: %w: %s", b.Pkg, strings.Join(a.GoEnv()[1:], " "), hint, err, strings.TrimSpace(stderr.String()))
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
