package container

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/pvrsdk"
)

// TestBuildSDK: the pvr-sdk template is a mgmt platform whose init is the
// pvr-sdk program, with a built-in config that pvr-sdk reads as
// loopback:12368, and whose _config overlay path is the seeds'.
func TestBuildSDK(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "mksquashfs not installed (Debian squashfs-tools)")
	}
	src := t.TempDir()
	bb, pvc, sdk := fakeBin(t, src, "busybox"), fakeBin(t, src, "pvcontrol"), fakeBin(t, src, "pvr-sdk")
	work := t.TempDir()
	e, err := Build(context.Background(), Spec{Name: "pvr-sdk", Template: SDK, Busybox: bb, Pvcontrol: pvc, PvrSDK: sdk, Work: work, Epoch: 1700000000})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(work, "pvr-sdk", "rootfs")
	for _, p := range []string{"usr/bin/pvr-sdk", "usr/bin/pvcontrol", "bin/busybox"} {
		if fi, err := os.Stat(filepath.Join(root, p)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, %v; want an executable", p, fi, err)
		}
	}
	c, err := pvrsdk.ReadConfig(filepath.Join(root, strings.TrimPrefix(pvrsdk.ConfigPath, "/")))
	if err != nil || c.Addr() != "127.0.0.1:12368" {
		t.Errorf("built-in config = %+v, %v; want loopback:12368", c, err)
	}
	conf, _ := os.ReadFile(e.Objects["pvr-sdk/lxc.container.conf"])
	if !strings.Contains(string(conf), "lxc.init.cmd = /usr/bin/pvr-sdk\n") {
		t.Errorf("lxc.container.conf = %s, want pvr-sdk as init", conf)
	}
	var run struct {
		Group string
		Roles []string
	}
	if err := json.Unmarshal(e.Inline["pvr-sdk/run.json"], &run); err != nil || run.Group != "platform" || len(run.Roles) != 1 || run.Roles[0] != "mgmt" {
		t.Errorf("run.json = %s, want roles [mgmt], group platform", e.Inline["pvr-sdk/run.json"])
	}
	if _, err := Build(context.Background(), Spec{Name: "pvr-sdk", Template: SDK, Busybox: bb, Pvcontrol: pvc, Work: t.TempDir()}); err == nil {
		t.Error("Build(pvr-sdk) without the pvr-sdk program = nil error")
	}
}
