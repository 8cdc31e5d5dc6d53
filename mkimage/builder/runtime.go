package builder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// runtimeCmds are the device programs, installed as /usr/bin/<name>.
var runtimeCmds = []string{"pantavisor", "pvcontrol", "pvtx", "pventer"}

// ccFor names the Debian cross compiler of a GOARCH (cgo builds).
var ccFor = map[string]string{
	"amd64":   "x86_64-linux-gnu-gcc",
	"arm64":   "aarch64-linux-gnu-gcc",
	"arm":     "arm-linux-gnueabihf-gcc",
	"mipsle":  "mipsel-linux-gnu-gcc",
	"riscv64": "riscv64-linux-gnu-gcc",
	"386":     "i686-linux-gnu-gcc",
}

func (b *run) goBuild(ctx context.Context, pkg, out string, cgo bool) error {
	goarch := recipe.Arches[b.r.Arch]
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = b.o.Repo
	env := append(os.Environ(), "GOOS=linux", "GOARCH="+goarch)
	if b.r.Arch == "armhf" {
		env = append(env, "GOARM=7")
	}
	if b.r.Arch == "armel" {
		env = append(env, "GOARM=5")
	}
	if cgo {
		env = append(env, "CGO_ENABLED=1")
		if goarch != runtime.GOARCH {
			env = append(env, "CC="+ccFor[goarch])
		}
	} else {
		env = append(env, "CGO_ENABLED=0")
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (b *run) buildRuntime(ctx context.Context) (*binaries, string, error) {
	dir := filepath.Join(b.work, "bin")
	bin := &binaries{Files: map[string]string{}}
	goarch := recipe.Arches[b.r.Arch]
	// cgo (for LXC) only natively for now: cross cgo needs the target
	// sysroot wired into CC, which is the next step.
	cgo := goarch == runtime.GOARCH
	var built, failed []string
	for _, c := range runtimeCmds {
		pkg := "./runtime/cmd/" + c
		if _, err := os.Stat(filepath.Join(b.o.Repo, pkg)); err != nil {
			failed = append(failed, c+" (missing)")
			continue
		}
		out := filepath.Join(dir, c)
		if err := b.goBuild(ctx, pkg, out, cgo); err != nil {
			b.o.Log.Warn("runtime program does not build", "cmd", c, "err", err)
			failed = append(failed, c)
			continue
		}
		bin.Files[c] = out
		built = append(built, c)
	}
	if b.r.InitMode == "embedded" {
		out := filepath.Join(dir, "pv-smoke-init")
		if err := b.goBuild(ctx, "./mkimage/cmd/pv-smoke-init", out, false); err != nil {
			return nil, "", err
		}
		bin.Files["pv-smoke-init"] = out
	}
	for _, c := range b.r.Containers {
		if c.Template == "mgmt" && b.o.MergeSrc == "" {
			out := filepath.Join(b.work, "bin-static", "pvcontrol")
			if err := b.goBuild(ctx, "./runtime/cmd/pvcontrol", out, false); err != nil {
				return nil, "", fmt.Errorf("static pvcontrol: %w", err)
			}
			bin.StaticPvcontrol = out
			break
		}
	}
	bin.Init = "pantavisor"
	if b.o.Init == InitSmoke {
		bin.Init = "pv-smoke-init"
	}
	if _, ok := bin.Files["pantavisor"]; !ok && bin.Init == "pantavisor" {
		return nil, "", fmt.Errorf("runtime/cmd/pantavisor did not build; use --init=smoke to boot-test the image without it")
	}
	if len(failed) > 0 {
		b.note("runtime programs not built: %s", strings.Join(failed, ", "))
	}
	return bin, fmt.Sprintf("(GOARCH=%s cgo=%v: %s; /init=%s)", goarch, cgo, strings.Join(built, " "), bin.Init), nil
}
