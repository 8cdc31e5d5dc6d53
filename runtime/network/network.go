// Package network is the host side of container networking: the bridges
// of device.json "network.pools" and of PV_NET_BRDEV, IPv4 forwarding and
// the NAT of a pool's subnet to whatever interface leads out (the uplink).
// Addresses are handed out by platform.IPAM; LXC makes the veth pairs.
//
// Usage:
//
//	err := network.Bridge("pvbr0", netip.MustParsePrefix("10.0.4.1/24"))
//	err = network.Setup(pool) // bridge with the gateway address, NAT if pool.NAT
//
// Bridges are made with the same ioctls upstream uses (SIOCBRADDBR,
// SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFFLAGS); NAT is one nftables table per
// pool, loaded over netlink in one transaction. Every call is idempotent.
package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// ErrBadName is returned for an interface name the kernel would refuse.
var ErrBadName = errors.New("invalid interface name")

// ValidIfName checks name as a Linux interface name: 1 to 15 bytes of
// letters, digits, '-', '_' and '.', and not "." or "..". Names reach an
// nft script, so nothing else may pass.
func ValidIfName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return fmt.Errorf("%q: %w", name, ErrBadName)
	}
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return fmt.Errorf("%q: %w", name, ErrBadName)
		}
	}
	return nil
}

// GatewayPrefix is the address the bridge of p carries: its gateway with
// the subnet's length, or the first host address when it names none.
func GatewayPrefix(p state.Pool) netip.Prefix {
	gw := p.Gateway
	if !gw.IsValid() {
		gw = p.Subnet.Masked().Addr().Next()
	}
	return netip.PrefixFrom(gw, p.Subnet.Bits())
}

// Setup makes the bridge of pool p with its gateway address and, when p
// asks for NAT, turns forwarding on and masquerades the subnet on every
// interface but the bridge. created tells whether the bridge was made
// here (Teardown removes only such bridges).
func Setup(p state.Pool) (created bool, err error) {
	if created, err = bridge(p.Bridge, GatewayPrefix(p)); err != nil {
		return created, fmt.Errorf("network pool %s: %w", p.Name, err)
	}
	if !p.NAT {
		return created, nil
	}
	if err := Forwarding(); err != nil {
		return created, fmt.Errorf("network pool %s: %w", p.Name, err)
	}
	if err := Masquerade(p.Bridge, p.Subnet); err != nil {
		return created, fmt.Errorf("network pool %s: %w", p.Name, err)
	}
	return created, nil
}

// Teardown undoes Setup of a pool whose bridge Setup created: its NAT
// table and the bridge.
func Teardown(p state.Pool) error {
	err := Unmasquerade(p.Bridge)
	if derr := DeleteBridge(p.Bridge); derr != nil {
		err = errors.Join(err, derr)
	}
	return err
}

// forwardPath is the IPv4 forwarding switch.
const forwardPath = "/proc/sys/net/ipv4/ip_forward"

// Forwarding turns IPv4 forwarding on.
func Forwarding() error {
	if b, err := os.ReadFile(forwardPath); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(forwardPath, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable ipv4 forwarding: %w", err)
	}
	return nil
}

// NATTable is the nftables table (family ip) holding the masquerade of
// the pool on bridge.
func NATTable(bridge string) string {
	return "pv_nat_" + strings.NewReplacer("-", "_", ".", "_").Replace(bridge)
}

// Masquerade NATs packets from subnet leaving through any interface but
// bridge to that interface's address: the pool's table, replaced in one
// netlink transaction (no nft(8) in the initrd).
func Masquerade(bridge string, subnet netip.Prefix) error {
	if err := ValidIfName(bridge); err != nil {
		return err
	}
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return fmt.Errorf("masquerade %s: %v is not an IPv4 subnet", bridge, subnet)
	}
	if err := masquerade(bridge, subnet.Masked()); err != nil {
		return fmt.Errorf("masquerade %s on %s: nftables: %w", subnet, bridge, err)
	}
	return nil
}

// Unmasquerade removes the NAT table of bridge (absent is fine).
func Unmasquerade(bridge string) error {
	if err := ValidIfName(bridge); err != nil {
		return err
	}
	if err := unmasquerade(bridge); err != nil {
		return fmt.Errorf("remove nat of %s: nftables: %w", bridge, err)
	}
	return nil
}

// MaskPrefix turns the PV_NET_BRADDRESS4/PV_NET_BRMASK4 pair into one
// prefix ("10.0.3.1", "255.255.255.0" → 10.0.3.1/24).
func MaskPrefix(addr, mask string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(addr))
	if err != nil || !a.Is4() {
		return netip.Prefix{}, fmt.Errorf("bridge address %q: not an IPv4 address", addr)
	}
	m, err := netip.ParseAddr(strings.TrimSpace(mask))
	if err != nil || !m.Is4() {
		return netip.Prefix{}, fmt.Errorf("bridge mask %q: not an IPv4 mask", mask)
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	bits := 0
	for v&0x80000000 != 0 {
		bits++
		v <<= 1
	}
	if v != 0 {
		return netip.Prefix{}, fmt.Errorf("bridge mask %q: not a contiguous mask", mask)
	}
	return netip.PrefixFrom(a, bits), nil
}
