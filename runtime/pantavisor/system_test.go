package pantavisor

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sysctlTree makes a /proc/sys stand-in with the files the tests set.
func sysctlTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range []string{"kernel/core_pattern", "net/ipv4/ip_forward"} {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStandalone: standalone mode applies the sysctls (the default core
// pattern included), serves the control socket, starts no container,
// leaves the revision alone and reboots the machine on REBOOT_DEVICE.
func TestStandalone(t *testing.T) {
	storage := newStorage(t)
	sys := sysctlTree(t)
	rr := &rebootRecorder{}
	called := false
	in := start(t, storage, func(o *Options) {
		o.Cmdline = "pv_rev=0 pv_standalone"
		o.Env = append(o.Env, "PV_SYSCTL_NET_IPV4_IP_FORWARD=1")
		o.SysctlRoot = sys
		o.SystemReboot = rr.reboot
		o.NewPlatforms = func(Env) (PlatformManager, error) { called = true; return &stepCounter{}, nil }
	})
	if got := readFile(t, filepath.Join(sys, "kernel/core_pattern")); got != "|/lib/pv/pvcrash --skip" {
		t.Errorf("core_pattern = %q, want the default pvcrash pattern", got)
	}
	if got := readFile(t, filepath.Join(sys, "net/ipv4/ip_forward")); got != "1" {
		t.Errorf("ip_forward = %q, want 1", got)
	}
	if called {
		t.Error("standalone mode made a platform manager")
	}
	if _, err := os.Stat(filepath.Join(storage, "trails", "0", ".pv", "progress")); err == nil {
		t.Error("standalone mode ran the factory revision (progress written)")
	}
	if code, _ := in.call(t, "GET", "/buildinfo", nil); code != 200 {
		t.Errorf("GET /buildinfo = %d, want the control socket served", code)
	}
	if code := in.command(t, "REBOOT_DEVICE"); code != 200 {
		t.Fatalf("REBOOT_DEVICE = %d", code)
	}
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no reboot after REBOOT_DEVICE")
	}
	if rr.count() != 1 {
		t.Errorf("machine reboots = %d, want 1", rr.count())
	}
}

// TestSysctlsNotInAppEngine: App Engine never writes the host's sysctls.
func TestSysctlsNotInAppEngine(t *testing.T) {
	sys := sysctlTree(t)
	in := start(t, newStorage(t), func(o *Options) {
		o.Env = append(o.Env, "PV_SYSCTL_NET_IPV4_IP_FORWARD=1")
		o.SysctlRoot = sys
	})
	in.stop()
	for _, f := range []string{"kernel/core_pattern", "net/ipv4/ip_forward"} {
		if got := readFile(t, filepath.Join(sys, f)); got != "old\n" {
			t.Errorf("%s = %q, want it untouched", f, got)
		}
	}
}
