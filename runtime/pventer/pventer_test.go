package pventer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/volume"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

func TestUsage(t *testing.T) {
	err := Run(nil, func(string) string { return "" }, os.Stdin, os.Stdout, os.Stderr)
	var ee ExitError
	if !errors.As(err, &ee) || ee.Code != 2 {
		t.Errorf("run() without -c = %v, want exit status 2", err)
	}
	err = Run([]string{"-c", "nothere", "-P", t.TempDir()}, func(string) string { return "" }, os.Stdin, os.Stdout, os.Stderr)
	if err == nil || errors.As(err, &ee) {
		t.Errorf("run() on a missing container = %v, want an error", err)
	}
}

func TestFindPath(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(b, "app"), 0o755)
	os.WriteFile(filepath.Join(b, "app", "config"), nil, 0o644)
	if got := findPath("app", []string{a, b}); got != b {
		t.Errorf("findPath(app) = %q, want %q", got, b)
	}
	if got := findPath("other", []string{a, b}); got != "" {
		t.Errorf("findPath(other) = %q, want none", got)
	}
}

func TestEnter(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: running containers needs root")
	}
	if err := rootfs.Available(); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	img, err := rootfs.Build(rootfs.Options{Files: []rootfs.File{{Path: "/etc/fixture", Data: []byte("inside\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	set := volume.NewSet(log)
	defer set.Unmount()
	vols := filepath.Join(dir, "volumes")
	if err := set.Loop(img, filepath.Join(vols, "enter", "root.squashfs")); err != nil {
		t.Fatal(err)
	}
	if err := set.Tmpfs(filepath.Join(vols, "enter", "lxc-overlay")); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "lxc.container.conf")
	os.WriteFile(conf, []byte(rootfs.LXCConf(rootfs.Conf{Name: "enter"})), 0o644)
	lxcpath := filepath.Join(dir, "lxc")
	c, err := lxc.Start(context.Background(), log, lxc.Spec{Name: "enter", LXCPath: lxcpath, ConfigFile: conf, VolumesDir: vols, StopTimeout: time.Second})
	if errors.Is(err, lxc.ErrNoCgo) {
		testenv.Skipf(t, "skipping: built without cgo")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	go func() { _, _ = io.Copy(io.Discard, c.Console()) }()

	env := func(k string) string {
		if k == "PV_LXC_PATH" {
			return lxcpath
		}
		return ""
	}
	out, _ := os.Create(filepath.Join(dir, "out"))
	err = Run([]string{"-c", "enter", "cat", "/etc/fixture"}, env, os.Stdin, out, out)
	out.Close()
	got, _ := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil || string(got) != "inside\n" {
		t.Errorf("pventer -c enter cat /etc/fixture = %v, output %q, want inside", err, got)
	}
	err = Run([]string{"-P", lxcpath, "-c", "enter", "/bin/sh", "-c", "exit 4"}, env, os.Stdin, os.Stdout, os.Stderr)
	var ee ExitError
	if !errors.As(err, &ee) || ee.Code != 4 {
		t.Errorf("pventer sh -c 'exit 4' = %v, want exit status 4", err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Errorf("Stop() error = %v", err)
	}
	if err := set.Unmount(); err != nil {
		t.Errorf("Unmount() error = %v", err)
	}
}
