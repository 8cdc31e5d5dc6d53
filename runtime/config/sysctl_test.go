package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSysctl(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"kernel/core_pattern", "net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter", "vm/swappiness", "vm/watermark_boost_factor"} {
		writeFile(t, root, f, "old\n")
	}
	for _, tc := range []struct{ name, want string }{
		{"KERNEL_CORE_PATTERN", "kernel/core_pattern"},
		{"NET_IPV4_IP_FORWARD", "net/ipv4/ip_forward"},
		{"NET_IPV4_CONF_ALL_RP_FILTER", "net/ipv4/conf/all/rp_filter"},
		{"VM_WATERMARK_BOOST_FACTOR", "vm/watermark_boost_factor"},
		{"NOPE_X", "nope_x"},
	} {
		if got := SysctlPath(root, tc.name); got != tc.want {
			t.Errorf("SysctlPath(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}

	c := New(testLogger(t))
	for _, s := range [][2]string{
		{"PV_SYSCTL_NET_IPV4_IP_FORWARD", "1"},
		{"sysctl.vm.watermark_boost_factor", "0"},
		{"PV_SYSCTL_KERNEL_CORE_PATTERN", "|/bin/cat"},
	} {
		if err := c.Set(s[0], s[1], PVConf); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Set("PV_SYSCTL_VM_SWAPPINESS", "60", Env); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range c.Sysctls(root) {
		got = append(got, s.Key+"="+s.Path+"="+s.Value)
	}
	want := []string{
		"PV_SYSCTL_KERNEL_CORE_PATTERN=kernel/core_pattern=|/bin/cat",
		"PV_SYSCTL_NET_IPV4_IP_FORWARD=net/ipv4/ip_forward=1",
		"PV_SYSCTL_VM_SWAPPINESS=vm/swappiness=60",
		"PV_SYSCTL_VM_WATERMARK_BOOST_FACTOR=vm/watermark_boost_factor=0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Sysctls = %q, want %q", got, want)
	}
	if err := c.ApplySysctls(root); err != nil {
		t.Fatalf("ApplySysctls: %v", err)
	}
	for f, v := range map[string]string{"kernel/core_pattern": "|/bin/cat", "net/ipv4/ip_forward": "1", "vm/swappiness": "60"} {
		b, _ := os.ReadFile(filepath.Join(root, f))
		if string(b) != v {
			t.Errorf("%s = %q, want %q", f, b, v)
		}
	}
	// A sysctl that does not exist is reported, never created.
	if err := c.Set("PV_SYSCTL_NOPE_X", "1", PVConf); err != nil {
		t.Fatal(err)
	}
	err := c.ApplySysctls(root)
	if err == nil || !strings.Contains(err.Error(), "PV_SYSCTL_NOPE_X") {
		t.Errorf("ApplySysctls with missing file = %v, want error naming the key", err)
	}
	if _, err := os.Stat(filepath.Join(root, "nope_x")); err == nil {
		t.Errorf("ApplySysctls created nope_x")
	}
	// Bad sysctl names are unknown keys.
	for _, bad := range []string{"PV_SYSCTL_", "PV_SYSCTL__X", "sysctl.", "sysctl.a..b", "sysctl.a/b"} {
		if IsKey(bad) {
			t.Errorf("IsKey(%q) = true, want false", bad)
		}
	}
}

func TestSysctlDashedInterface(t *testing.T) {
	c := New(nil)
	if err := c.Set("sysctl.net.ipv4.conf.br-lan.rp_filter", "0", PVConf); err != nil {
		t.Fatal(err)
	}
	s := c.Sysctls(t.TempDir())
	if len(s) != 2 || s[1].Path != "net/ipv4/conf/br-lan/rp_filter" {
		t.Fatalf("Sysctls = %+v, want the br-lan path kept", s)
	}
	if got := c.get(s[1].Key); got != "0" {
		t.Errorf("Get(%s) = %q, want 0", s[1].Key, got)
	}
}
