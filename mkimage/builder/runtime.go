package builder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

// binaries are the Go programs built for the target: name → host path.
type binaries struct {
	Files map[string]string
	// StaticPvcontrol is pvcontrol built with CGO_ENABLED=0 for
	// management containers.
	StaticPvcontrol string
	// StaticPvrSDK is the pvr-sdk container's program (CGO_ENABLED=0).
	StaticPvrSDK string
	// StaticPvcurl is pvcurl, likewise.
	StaticPvcurl string
	// Init is the name of the program /init points at.
	Init string
}

// keptWork are the parts of the work directory that survive from one
// build to the next (cleanWork): the go build outputs, so that go can
// tell its programs are up to date and skip linking them again, and the
// storage objects and those of a PVR_MERGE_SRC clone, content-addressed
// and checked against their names before they are used again (writeTrail,
// pvrclient.Clone).
var keptWork = []string{"bin", "bin-static", "storage/objects", mergeCloneDir + "/objects"}

// cleanWork empties the work directory for a new build, except keptWork:
// everything else is staged afresh.
func cleanWork(work string) error { return cleanExcept(work, "", keptWork) }

func cleanExcept(dir, rel string, keep []string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		r := path.Join(rel, e.Name())
		switch {
		case e.IsDir() && slices.Contains(keep, r):
		case e.IsDir() && slices.ContainsFunc(keep, func(k string) bool { return strings.HasPrefix(k, r+"/") }):
			if err := cleanExcept(filepath.Join(dir, e.Name()), r, keep); err != nil {
				return err
			}
		default:
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// goBuild builds the main packages pkgs into outDir (one go command: the
// links run in parallel) as outDir/<base name of the package>.
//
// Incremental: the programs keep their go build ID, so go itself skips
// the link of a program whose inputs (sources, flags, environment, C
// compiler) are unchanged and whose file is still the one it wrote. Two
// things go does not check are checked here, through outDir/.stamp
// written after each successful build: that no program file was
// modified or replaced since (an interrupted copy keeps a valid build
// ID), and, for cgo, the C libraries the programs link against
// (libRoot: "/" natively, the target sysroot when cross-compiling, plus
// the cross toolchain's libc in libDirs). Any difference empties outDir
// and go links afresh.
func (b *run) goBuild(ctx context.Context, pkgs []string, outDir string, cgo bool, cgoEnv []string, libRoot string, libDirs []string) error {
	if len(pkgs) == 0 {
		return nil
	}
	progs := map[string]string{}
	var files []string
	for _, p := range pkgs {
		progs[filepath.Base(p)] = filepath.Join(outDir, filepath.Base(p))
		files = append(files, progs[filepath.Base(p)])
	}
	sort.Strings(files)
	key := func() string {
		if !cgo {
			return "nocgo"
		}
		return "cgo\n" + libsID(libRoot, files, libDirs)
	}
	stampPath := filepath.Join(outDir, ".stamp")
	if !readStamp(stampPath).upToDate(key(), progs) {
		if err := os.RemoveAll(outDir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	if err := os.Remove(stampPath); err != nil && !os.IsNotExist(err) {
		return err
	}
	// nethttpomithttp2: pv-ctrl speaks HTTP/1.1 on a unix socket; leaving
	// out net/http's HTTP/2 saves ~110 KB of compressed initrd.
	// The build ID stays (no -buildid=): it is how go knows a program is
	// up to date, and it is itself a function of the inputs (-trimpath).
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-tags=nethttpomithttp2", "-ldflags=-s -w", "-o", outDir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.o.Repo
	env := append(os.Environ(), b.arch.GoEnv()...)
	if cgo {
		env = append(append(env, "CGO_ENABLED=1"), cgoEnv...)
	} else {
		env = append(env, "CGO_ENABLED=0")
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", strings.Join(pkgs, " "), err, strings.TrimSpace(stderr.String()))
	}
	return writeStamp(stampPath, key(), progs)
}

// buildRuntime builds the initrd's programs (cgo: go-lxc) and, without
// cgo, the smoke init and the management containers' pvcontrol, in two
// concurrent go commands. App Engine packages are built by
// appengine.Assemble with the same cgo setup (b.cgoEnv).
func (b *run) buildRuntime(ctx context.Context, sysroot string) (*binaries, string, error) {
	dir, sdir := filepath.Join(b.work, "bin"), filepath.Join(b.work, "bin-static")
	bin := &binaries{Files: map[string]string{}}
	goarch := b.arch.GOARCH
	// cgo (go-lxc): natively, or cross against the target sysroot.
	cgoEnv, cgo, why := b.crossCgoEnv(sysroot)
	b.cgoEnv = cgoEnv
	if !cgo && b.r.InitMode == recipe.ModeAppengine {
		return nil, "", fmt.Errorf("cgo is needed for the %s App Engine package (pantavisor and pventer link liblxc): %s", goarch, why)
	}
	if !cgo {
		b.note("runtime programs built without cgo (no LXC containers): %s", why)
	}
	var progs, static []string
	if b.r.InitMode == recipe.ModeEmbedded {
		progs = b.r.Initrd.Programs
		if b.o.Init == InitSmoke {
			static = append(static, "./mkimage/cmd/pv-smoke-init")
		}
	}
	if b.o.MergeSrc == "" {
		for _, c := range b.r.Containers {
			if (c.Template == "mgmt" || c.Template == "pvr-sdk") && !slices.Contains(static, "./runtime/cmd/pvcontrol") {
				static = append(static, "./runtime/cmd/pvcontrol")
			}
			if c.Template == "mgmt" && !slices.Contains(static, "./runtime/cmd/pvcurl") {
				static = append(static, "./runtime/cmd/pvcurl")
			}
			if c.Template == "pvr-sdk" && !slices.Contains(static, "./runtime/cmd/pvr-sdk") {
				static = append(static, "./runtime/cmd/pvr-sdk")
			}
		}
	}
	pkgs := make([]string, len(progs))
	for i, p := range progs {
		pkgs[i] = "./runtime/cmd/" + p
	}
	// The C libraries of the cgo link: the host's, or the sysroot's and
	// the cross toolchain's libc (Debian: /usr/<triplet>/lib).
	libRoot, libDirs := "/", []string(nil)
	if len(cgoEnv) > 0 {
		libRoot = sysroot
		libDirs = []string{filepath.Join("/usr", b.arch.Triplet, "lib")}
	}
	var serr error
	done := make(chan struct{})
	go func() { defer close(done); serr = b.goBuild(ctx, static, sdir, false, nil, "", nil) }()
	err := b.goBuild(ctx, pkgs, dir, cgo, cgoEnv, libRoot, libDirs)
	<-done
	if err != nil {
		return nil, "", err
	}
	if serr != nil {
		return nil, "", serr
	}
	for _, p := range progs {
		bin.Files[p] = filepath.Join(dir, p)
	}
	for _, p := range static {
		switch filepath.Base(p) {
		case "pvcontrol":
			bin.StaticPvcontrol = filepath.Join(sdir, "pvcontrol")
		case "pvr-sdk":
			bin.StaticPvrSDK = filepath.Join(sdir, "pvr-sdk")
		case "pvcurl":
			bin.StaticPvcurl = filepath.Join(sdir, "pvcurl")
		case "pv-smoke-init":
			bin.Files["pv-smoke-init"] = filepath.Join(sdir, "pv-smoke-init")
		}
	}
	bin.Init = "pantavisor"
	if b.o.Init == InitSmoke {
		bin.Init = "pv-smoke-init"
	}
	return bin, fmt.Sprintf("(GOARCH=%s cgo=%v: %s; static: %s; /init=%s)", goarch, cgo, strings.Join(progs, " "), strings.Join(static, " "), bin.Init), nil
}
