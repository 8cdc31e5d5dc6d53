package sshd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/volume"
)

// TestContainerShell logs in as a real LXC container (busybox squashfs)
// and runs commands inside it through the pventer program, as the daemon
// does.
func TestContainerShell(t *testing.T) {
	c := newClient(t)
	testenv.NeedRoot(t, "running containers")
	if err := rootfs.Available(); err != nil {
		testenv.Skipf(t, "%v", err)
	}
	if err := lxc.Available(); err != nil {
		testenv.Skipf(t, "%v", err)
	}
	dir := t.TempDir()
	// pventer, with cgo (go-lxc), as the daemon's multi-call binary runs it
	_, self, _, _ := runtime.Caller(0)
	pventer := filepath.Join(dir, "pventer")
	build := exec.Command("go", "build", "-o", pventer, "./runtime/cmd/pventer")
	build.Dir = filepath.Join(filepath.Dir(self), "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build pventer: %v: %s", err, out)
	}

	img, err := rootfs.Build(rootfs.Options{Files: []rootfs.File{{Path: "/etc/fixture", Data: []byte("inside the container\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := "sshd-" + hex.EncodeToString(suffix) // a unique cgroup lxc/<name>
	log := tlog(t)
	set := volume.NewSet(log)
	defer set.Unmount()
	vols := filepath.Join(dir, "volumes")
	if err := set.Loop(img, filepath.Join(vols, name, "root.squashfs")); err != nil {
		t.Fatal(err)
	}
	if err := set.Tmpfs(filepath.Join(vols, name, "lxc-overlay")); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "lxc.container.conf")
	os.WriteFile(conf, []byte(rootfs.LXCConf(rootfs.Conf{Name: name})), 0o644)
	lxcpath := filepath.Join(dir, "lxc")
	ct, err := lxc.Start(context.Background(), log, lxc.Spec{Name: name, LXCPath: lxcpath, ConfigFile: conf, VolumesDir: vols, StopTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Stop(context.Background())
	go func() { _, _ = io.Copy(io.Discard, ct.Console()) }()

	enter := func(container string, argv []string) (*exec.Cmd, error) {
		if _, err := os.Stat(filepath.Join(lxcpath, container, "config")); err != nil {
			return nil, ErrNoContainer
		}
		return exec.Command(pventer, append([]string{"-P", lxcpath, "-c", container, "--"}, argv...)...), nil
	}
	srv := start(t, static(c.pub), Options{Enter: enter})
	out, errs, code := c.ssh(t, srv, "", name+"@127.0.0.1", "cat /etc/fixture; exit 7")
	if out != "inside the container\n" || code != 7 {
		t.Errorf("ssh %s@ cat /etc/fixture = %q, %q, exit %d; want the container's file, exit 7", name, out, errs, code)
	}
	// an interactive shell on a pty, fed from stdin
	out, errs, code = c.ssh(t, srv, "cat /etc/fixture\nexit 5\n", "-tt", name+"@127.0.0.1")
	if code != 5 || !strings.Contains(out, "inside the container") {
		t.Errorf("ssh -tt %s@ shell = %q, %q, exit %d; want the file, exit 5", name, out, errs, code)
	}
	// the host's file is not what the container sees
	hostFile := filepath.Join(dir, "host-only")
	os.WriteFile(hostFile, []byte("host"), 0o644)
	out, _, code = c.ssh(t, srv, "", name+"@127.0.0.1", "cat "+hostFile)
	if code == 0 || bytes.Contains([]byte(out), []byte("host")) {
		t.Errorf("ssh %s@ cat <host file> = %q, exit %d; want it missing inside", name, out, code)
	}
	_, errs, code = c.ssh(t, srv, "", "nothere@127.0.0.1", "true")
	if code != 1 || !strings.Contains(errs, ErrNoContainer.Error()) {
		t.Errorf("ssh nothere@ = %q, exit %d; want %q", errs, code, ErrNoContainer)
	}
	if err := ct.Stop(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Stop() = %v", err)
	}
}
