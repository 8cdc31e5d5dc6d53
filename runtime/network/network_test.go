package network

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

func TestValidIfName(t *testing.T) {
	for _, ok := range []string{"lxcbr0", "pv-br.1", "a", "abcdefghijklmno"} {
		if err := ValidIfName(ok); err != nil {
			t.Errorf("ValidIfName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "abcdefghijklmnop", "br 0", `br"0`, "br/0", "br;0", "ä"} {
		if err := ValidIfName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("ValidIfName(%q) = %v, want ErrBadName", bad, err)
		}
	}
}

func TestMaskPrefix(t *testing.T) {
	for _, tc := range []struct{ addr, mask, want string }{
		{"10.0.3.1", "255.255.255.0", "10.0.3.1/24"},
		{"192.168.7.9", "255.255.0.0", "192.168.7.9/16"},
		{" 10.0.0.1 ", "255.255.255.252", "10.0.0.1/30"},
		{"10.0.0.1", "0.0.0.0", "10.0.0.1/0"},
	} {
		if got, err := MaskPrefix(tc.addr, tc.mask); err != nil || got.String() != tc.want {
			t.Errorf("MaskPrefix(%q, %q) = %v, %v, want %s", tc.addr, tc.mask, got, err, tc.want)
		}
	}
	for _, tc := range [][2]string{{"host", "255.0.0.0"}, {"10.0.0.1", "255.0.255.0"}, {"::1", "255.0.0.0"}, {"10.0.0.1", "24"}} {
		if got, err := MaskPrefix(tc[0], tc[1]); err == nil {
			t.Errorf("MaskPrefix(%q, %q) = %v, want an error", tc[0], tc[1], got)
		}
	}
}

func TestGatewayPrefix(t *testing.T) {
	p := state.Pool{Subnet: netip.MustParsePrefix("10.9.0.0/16")}
	if got := GatewayPrefix(p); got.String() != "10.9.0.1/16" {
		t.Errorf("GatewayPrefix(no gateway) = %v, want 10.9.0.1/16", got)
	}
	p.Gateway = netip.MustParseAddr("10.9.255.254")
	if got := GatewayPrefix(p); got.String() != "10.9.255.254/16" {
		t.Errorf("GatewayPrefix = %v, want 10.9.255.254/16", got)
	}
}

// inNewNetns runs f on a thread moved to a new network namespace, which
// dies with the thread.
func inNewNetns(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with its namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		f()
	}()
	<-done
}

// TestBridgeAndNAT makes a bridge and its NAT table in a network
// namespace of its own and reads them back.
func TestBridgeAndNAT(t *testing.T) {
	testenv.NeedRoot(t, "bridges in a network namespace")
	if _, err := exec.LookPath("nft"); err != nil {
		testenv.Skipf(t, "skipping: no nft (Debian nftables)")
	}
	inNewNetns(t, func() {
		p := state.Pool{Name: "int", Bridge: "pvtest0", Subnet: netip.MustParsePrefix("10.77.0.0/24"), NAT: true}
		for i := 0; i < 2; i++ { // idempotent
			created, err := Setup(p)
			if err != nil || created != (i == 0) {
				t.Errorf("Setup() #%d = %v, %v, want created only the first time", i, created, err)
				return
			}
		}
		ifc, err := net.InterfaceByName("pvtest0")
		if err != nil || ifc.Flags&net.FlagUp == 0 {
			t.Errorf("bridge = %+v, %v, want it up", ifc, err)
			return
		}
		addrs, _ := ifc.Addrs()
		var v4 []string
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				v4 = append(v4, a.String())
			}
		}
		if len(v4) != 1 || v4[0] != "10.77.0.1/24" {
			t.Errorf("bridge IPv4 addresses = %v, want [10.77.0.1/24]", v4)
		}
		out, err := exec.Command("nft", "list", "table", "ip", NATTable("pvtest0")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "masquerade") || strings.Count(string(out), "masquerade") != 1 {
			t.Errorf("nft list = %s, %v, want one masquerade rule", out, err)
		}
		if err := Unmasquerade("pvtest0"); err != nil {
			t.Errorf("Unmasquerade() = %v", err)
		}
		if out, err := exec.Command("nft", "list", "table", "ip", NATTable("pvtest0")).CombinedOutput(); err == nil {
			t.Errorf("table left after Unmasquerade: %s", out)
		}
		if err := DeleteBridge("pvtest0"); err != nil {
			t.Errorf("DeleteBridge() = %v", err)
		}
		if _, err := net.InterfaceByName("pvtest0"); err == nil {
			t.Errorf("bridge left after DeleteBridge")
		}
		if err := Bridge("bad name", netip.MustParsePrefix("10.0.0.1/8")); !errors.Is(err, ErrBadName) {
			t.Errorf("Bridge(bad name) = %v, want ErrBadName", err)
		}
	})
}

func FuzzMaskPrefix(f *testing.F) {
	f.Add("10.0.3.1", "255.255.255.0")
	f.Add("10.0.3.1", "255.0.255.0")
	f.Add("::1", "ffff::")
	f.Fuzz(func(t *testing.T, addr, mask string) {
		p, err := MaskPrefix(addr, mask)
		if err != nil {
			return
		}
		if !p.IsValid() || !p.Addr().Is4() || p.Bits() < 0 || p.Bits() > 32 {
			t.Fatalf("MaskPrefix(%q, %q) = %v", addr, mask, p)
		}
	})
}

func FuzzValidIfName(f *testing.F) {
	f.Add("lxcbr0")
	f.Add(`br"; flush ruleset`)
	f.Fuzz(func(t *testing.T, name string) {
		if ValidIfName(name) != nil {
			return
		}
		if strings.ContainsAny(name, "\"\\ \n;{}/") || len(name) > 15 {
			t.Fatalf("ValidIfName(%q) accepted it", name)
		}
	})
}
