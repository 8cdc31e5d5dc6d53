package builder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

// binaries are the Go programs built for the target: name → host path.
type binaries struct {
	Files map[string]string
	// StaticPvcontrol is pvcontrol built with CGO_ENABLED=0 for
	// management containers.
	StaticPvcontrol string
	// Init is the name of the program /init points at.
	Init string
}

// ccFor names the Debian cross compiler of a GOARCH (cgo builds).
var ccFor = map[string]string{
	"amd64":   "x86_64-linux-gnu-gcc",
	"arm64":   "aarch64-linux-gnu-gcc",
	"arm":     "arm-linux-gnueabihf-gcc",
	"mipsle":  "mipsel-linux-gnu-gcc",
	"riscv64": "riscv64-linux-gnu-gcc",
	"386":     "i686-linux-gnu-gcc",
}

// goBuild builds the main packages pkgs into outDir (one go command: the
// links run in parallel) as outDir/<base name of the package>.
func (b *run) goBuild(ctx context.Context, pkgs []string, outDir string, cgo bool, cgoEnv []string) error {
	if len(pkgs) == 0 {
		return nil
	}
	goarch := recipe.Arches[b.r.Arch]
	// nethttpomithttp2: pv-ctrl speaks HTTP/1.1 on a unix socket; leaving
	// out net/http's HTTP/2 saves ~110 KB of compressed initrd.
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-tags=nethttpomithttp2", "-ldflags=-s -w -buildid=", "-o", outDir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.o.Repo
	env := append(os.Environ(), "GOOS=linux", "GOARCH="+goarch)
	if b.r.Arch == "armhf" {
		env = append(env, "GOARM=7")
	}
	if b.r.Arch == "armel" {
		env = append(env, "GOARM=5")
	}
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
	return nil
}

// buildRuntime builds the initrd's programs (cgo: go-lxc) and, without
// cgo, the smoke init and the management containers' pvcontrol, in two
// concurrent go commands. App Engine packages are built by
// appengine.Assemble with the same cgo setup (b.cgoEnv).
func (b *run) buildRuntime(ctx context.Context, pk *packages) (*binaries, string, error) {
	dir, sdir := filepath.Join(b.work, "bin"), filepath.Join(b.work, "bin-static")
	bin := &binaries{Files: map[string]string{}}
	goarch := recipe.Arches[b.r.Arch]
	// cgo (go-lxc): natively, or cross against the target sysroot.
	cgoEnv, cgo, why := b.crossCgoEnv(pk.Sysroot)
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
	for _, c := range b.r.Containers {
		if c.Template == "mgmt" && b.o.MergeSrc == "" {
			static = append(static, "./runtime/cmd/pvcontrol")
			break
		}
	}
	pkgs := make([]string, len(progs))
	for i, p := range progs {
		pkgs[i] = "./runtime/cmd/" + p
	}
	var serr error
	done := make(chan struct{})
	go func() { defer close(done); serr = b.goBuild(ctx, static, sdir, false, nil) }()
	err := b.goBuild(ctx, pkgs, dir, cgo, cgoEnv)
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
