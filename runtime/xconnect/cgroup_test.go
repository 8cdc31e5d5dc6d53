package xconnect

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"golang.org/x/sys/unix"
)

// A drm link into a consumer whose cgroup v1 devices controller denies
// every device: pv-xconnect allows the injected node there, so the
// consumer opens it; once the link is gone, the same node made again is
// refused. Real cgroup: a child of the devices hierarchy denying all, with
// a shell in it as the consumer. The test has no DRM device: the major is
// /dev/null's (1), as in TestMeshDRMNode.
func TestMeshDRMDeviceCgroup(t *testing.T) {
	testenv.NeedRoot(t, "cgroups and mknod")
	m := NewMesh(testLog(t), "")
	defer m.Close()
	mnt, err := m.devicesMount()
	if err != nil {
		t.Fatal(err)
	}
	if mnt == "" {
		// Not a missing tool: on cgroup2 there is nothing to grant.
		t.Skip("skipping: no cgroup v1 devices hierarchy here (cgroup2: checkOpen, proven by boottest's TestXconnectDRM)")
	}
	cg := filepath.Join(mnt, "pv-xconnect-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		testenv.Skipf(t, "skipping: cannot make a devices cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(cg) })
	if err := writeCgroup(cg+"/devices.deny", "a"); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	old := drmMajor
	drmMajor = 1
	defer func() { drmMajor = old }()
	null := unix.Mkdev(1, 3)
	if err := unix.Mknod(dir+"/card0", unix.S_IFCHR|0o666, int(null)); err != nil {
		t.Fatal(err)
	}
	target := dir + "/consumer/dev/dri/card0"

	// The consumer opens its target read-write for every line it reads.
	sh := exec.Command("sh", "-c", `while read x; do if (: <>"$1"); then echo ok; else echo denied; fi; done`, "sh", target)
	in, _ := sh.StdinPipe()
	outp, _ := sh.StdoutPipe()
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); sh.Wait() })
	out := bufio.NewReader(outp)
	if err := writeCgroup(cg+"/cgroup.procs", strconv.Itoa(sh.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	opens := func() string {
		t.Helper()
		io.WriteString(in, "x\n")
		s, err := out.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(s)
	}

	l := selfLink("drm", dir)
	l.ConsumerPid, l.Role, l.Socket, l.Target = sh.Process.Pid, "master", dir+"/card0", target
	if err := m.Reconcile([]ctrl.XConnectLink{l}); err != nil {
		t.Fatal(err)
	}
	if got := opens(); got != "ok" {
		t.Errorf("consumer opening the injected node: %s, want ok", got)
	}
	if list, _ := os.ReadFile(cg + "/devices.list"); !strings.Contains(string(list), "c 1:3 rwm") {
		t.Errorf("devices.list = %q, want c 1:3 rwm", list)
	}
	if err := m.Reconcile(nil); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(target, unix.S_IFCHR|0o666, int(null)); err != nil {
		t.Fatal(err)
	}
	if got := opens(); got != "denied" {
		t.Errorf("consumer opening the node after the link went: %s, want denied", got)
	}
	if list, _ := os.ReadFile(cg + "/devices.list"); strings.TrimSpace(string(list)) != "" {
		t.Errorf("devices.list after removal = %q, want empty", list)
	}

	// A cgroup allowing the device already gets no grant, and keeps its
	// rule when the link goes.
	os.Remove(target)
	if err := writeCgroup(cg+"/devices.allow", "c 1:* rwm"); err != nil {
		t.Fatal(err)
	}
	if err := m.Reconcile([]ctrl.XConnectLink{l}); err != nil {
		t.Fatal(err)
	}
	if err := m.Reconcile(nil); err != nil {
		t.Fatal(err)
	}
	if list, _ := os.ReadFile(cg + "/devices.list"); strings.TrimSpace(string(list)) != "c 1:* rwm" {
		t.Errorf("devices.list = %q, want the cgroup's own c 1:* rwm only", list)
	}
}

func TestDevicePermitted(t *testing.T) {
	card := unix.Mkdev(226, 0)
	for _, tc := range []struct {
		list string
		want bool
	}{
		{"a *:* rwm\n", true},
		{"c 1:3 rwm\nc 226:* rw\n", true},
		{"c 226:0 rwm\n", true},
		{"c 226:1 rwm\n", false},
		{"c 226:0 r\n", false},
		{"b 226:0 rwm\n", false},
		{"c 22:0 rwm\n", false},
		{"", false},
	} {
		if got := devicePermitted([]byte(tc.list), card); got != tc.want {
			t.Errorf("devicePermitted(%q, 226:0) = %v, want %v", tc.list, got, tc.want)
		}
	}
	if got := deviceRule(card); got != "c 226:0 rwm" {
		t.Errorf("deviceRule = %q", got)
	}
}

// checkOpen finds the consumer's cgroup2 directory from mountinfo and
// /proc/<pid>/cgroup; none without a cgroup2 mount (no check).
func TestUnifiedCgroup(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(proc+"/self", 0o755)
	os.MkdirAll(proc+"/42", 0o755)
	os.WriteFile(proc+"/42/cgroup", []byte("0::/lxc/app\n"), 0o644)
	m := NewMesh(testLog(t), proc)
	os.WriteFile(proc+"/self/mountinfo", []byte("22 1 0:20 / /sys rw - sysfs sysfs rw\n"), 0o644)
	if cg, err := m.unifiedCgroup(42); cg != "" || err != nil {
		t.Errorf("unifiedCgroup(no cgroup2) = %q, %v; want none", cg, err)
	}
	os.WriteFile(proc+"/self/mountinfo", []byte("22 1 0:20 / /sys rw - sysfs sysfs rw\n30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"), 0o644)
	if cg, err := m.unifiedCgroup(42); cg != "/sys/fs/cgroup/lxc/app" || err != nil {
		t.Errorf("unifiedCgroup() = %q, %v; want /sys/fs/cgroup/lxc/app", cg, err)
	}
}
