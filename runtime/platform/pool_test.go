package platform

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
)

// netnsEnv marks the child test process that runs in its own network
// namespace.
const netnsEnv = "PV_TEST_IN_NETNS"

// inOwnNetns runs the calling test again in a new network namespace
// (unshare -n -m, with its own sysfs) and returns false; in that child it returns true. The
// bridges, NAT tables and addresses the test makes then never touch the
// host's network.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == "1" {
		return true
	}
	for _, tool := range []string{"unshare", "ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "skipping: no %s (util-linux, iproute2, nftables)", tool)
		}
	}
	// A mount namespace too, to show the new network namespace's devices
	// in /sys (liblxc checks /sys/class/net/<bridge>/bridge); the rest of
	// /sys, cgroups included, stays.
	sys := t.TempDir()
	script := `mount -t sysfs sysfs "$1" && mount --bind "$1/class/net" /sys/class/net &&
mount --bind "$1/devices/virtual/net" /sys/devices/virtual/net && shift && exec "$@"`
	cmd := exec.Command("unshare", "--net", "--mount", "--", "sh", "-c", script, "sh", sys,
		os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace of its own:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child test: %v", err)
	}
	return false
}

func runCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestPoolNetwork starts two containers in a NAT pool of device.json: they
// get their addresses from the pool on its bridge, reach each other, and
// reach an uplink host (a network namespace standing in for the outside,
// which has no route back to the pool, so only the masquerade makes its
// replies arrive). Leases are kept in a file and released when a
// platform leaves the revision.
func TestPoolNetwork(t *testing.T) {
	testenv.NeedRoot(t, "bridges, network namespaces, containers")
	if err := rootfs.Available(); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	if err := lxc.Available(); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	if !inOwnNetns(t) {
		return
	}
	runCmd(t, "ip", "link", "set", "lo", "up")
	uplink := fmt.Sprintf("pvt-up-%d", os.Getpid())
	runCmd(t, "ip", "netns", "add", uplink)
	defer exec.Command("ip", "netns", "del", uplink).Run()
	runCmd(t, "ip", "link", "add", "pvup0", "type", "veth", "peer", "name", "wan0", "netns", uplink)
	runCmd(t, "ip", "addr", "add", "198.51.100.1/24", "dev", "pvup0")
	runCmd(t, "ip", "link", "set", "pvup0", "up")
	runCmd(t, "ip", "-n", uplink, "addr", "add", "198.51.100.2/24", "dev", "wan0")
	runCmd(t, "ip", "-n", uplink, "link", "set", "wan0", "up")
	runCmd(t, "ip", "-n", uplink, "link", "set", "lo", "up")

	img, err := rootfs.Build(rootfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths := Paths{
		Storage: filepath.Join(dir, "storage"), Volumes: filepath.Join(dir, "volumes"),
		Configs: filepath.Join(dir, "configs"), Run: filepath.Join(dir, "run"), Logs: filepath.Join(dir, "logs"),
	}
	net := `"network":{"mode":"pool","pool":"int"}`
	st := mkState(t, map[string]string{"neta": net, "netb": net},
		`"device.json":{"network":{"pools":{"int":{"type":"bridge","bridge":"pvtbr0","subnet":"10.213.0.0/24","gateway":"10.213.0.1","nat":true}}}}`)
	trail := filepath.Join(paths.Storage, "trails", "1")
	for _, name := range []string{"neta", "netb"} {
		d := filepath.Join(trail, name)
		must(t, os.MkdirAll(d, 0o755))
		data, _ := os.ReadFile(img)
		must(t, os.WriteFile(filepath.Join(d, "root.squashfs"), data, 0o644))
		must(t, os.WriteFile(filepath.Join(d, "lxc.container.conf"), []byte(rootfs.LXCConf(rootfs.Conf{Name: name})), 0o644))
	}
	e, err := New(st, Options{Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	leases := filepath.Join(dir, "ipam.json")
	ipam := NewIPAM(st.Device().Pools)
	must(t, ipam.LoadLeases(leases))
	h := NewHost(slog.New(slog.NewTextHandler(os.Stderr, nil)), paths, st, "1")
	h.IPAM = ipam
	ctx := context.Background()
	defer h.Close(ctx)
	started := func() bool {
		a, _ := e.Info("neta")
		b, _ := e.Info("netb")
		return a.Status == Started && b.Status == Started
	}
	if f := drive(t, ctx, e, h, started); len(f) != 0 {
		t.Fatalf("failures while starting: %v", f)
	}
	got := ipam.Leases()
	a, b := got["neta"], got["netb"]
	if !a.IsValid() || !b.IsValid() || a == b || !netip.MustParsePrefix("10.213.0.0/24").Contains(a) {
		t.Fatalf("leases = %v, want two addresses of 10.213.0.0/24", got)
	}
	lxcpath := filepath.Join(paths.Run, "lxc")
	sh := func(name, script string) (string, int) {
		t.Helper()
		f, err := os.CreateTemp(dir, "out")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		status, err := lxc.Attach(lxcpath, name, []string{"/bin/sh", "-c", script}, nil, os.Stdin, f, f)
		if err != nil {
			t.Fatalf("attach %s: %v", name, err)
		}
		out, _ := os.ReadFile(f.Name())
		return string(out), status
	}
	if out, _ := sh("neta", "ip -4 addr show eth0"); !strings.Contains(out, a.String()+"/24") {
		t.Errorf("neta eth0 = %q, want %s/24", out, a)
	}
	for _, tc := range []struct{ from, to string }{
		{"neta", b.String()}, {"netb", a.String()}, {"neta", "10.213.0.1"}, {"neta", "198.51.100.2"}, {"netb", "198.51.100.2"},
	} {
		if out, status := sh(tc.from, "ping -c 1 -W 3 "+tc.to); status != 0 {
			t.Errorf("%s: ping %s = exit %d: %s", tc.from, tc.to, status, out)
		}
	}
	// Without the masquerade the uplink's replies have nowhere to go.
	runCmd(t, "nft", "delete", "table", "ip", "pv_nat_pvtbr0")
	if out, status := sh("neta", "ping -c 1 -W 1 198.51.100.2"); status == 0 {
		t.Errorf("ping of the uplink without NAT succeeded: %s", out)
	}

	// The leases file gives the same addresses to the next daemon.
	again := NewIPAM(st.Device().Pools)
	must(t, again.LoadLeases(leases))
	for _, p := range []string{"neta", "netb"} {
		n, err := again.Assign(p, st.Platform(p).Network)
		if err != nil || n.Address.Addr() != got[p] {
			t.Errorf("after restart Assign(%s) = %v, %v, want %s", p, n, err, got[p])
		}
	}
	// netb leaves the revision: its address is free again.
	must(t, again.Retain([]string{"neta"}))
	third := NewIPAM(st.Device().Pools)
	must(t, third.LoadLeases(leases))
	if l := third.Leases(); len(l) != 1 || l["neta"] != a {
		t.Errorf("leases after netb left = %v, want only neta %s", l, a)
	}

	for _, act := range e.StopAll() {
		more, _ := h.Do(ctx, e, act)
		for _, m := range more {
			h.Do(ctx, e, m)
		}
	}
	// The bridge Host made goes with it.
	if err := h.Close(ctx); err != nil {
		t.Errorf("Close() error = %v", err)
	}
	if out, err := exec.Command("ip", "link", "show", "pvtbr0").CombinedOutput(); err == nil {
		t.Errorf("bridge left after Close: %s", out)
	}
}
