package platform

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"

	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// ErrPoolExhausted is returned when a pool has no free address left.
var ErrPoolExhausted = errors.New("network pool exhausted")

// IPAM hands out container addresses from device.json network pools. The
// host side (bridge creation, NAT) is not its business.
type IPAM struct {
	pools map[string]state.Pool
	used  map[netip.Addr]string // address → platform
	owned map[string]netip.Addr // platform → address
}

// NewIPAM returns an allocator over pools (nil is fine: no pools).
func NewIPAM(pools map[string]state.Pool) *IPAM {
	return &IPAM{pools: pools, used: map[netip.Addr]string{}, owned: map[string]netip.Addr{}}
}

// Assign returns the veth of platform plat for its run.json network, or
// nil when it shares the host network (no network object, or mode host).
// A platform keeps its address until Release.
func (m *IPAM) Assign(plat string, n *state.Network) (*lxc.Net, error) {
	if n == nil || n.Mode != "pool" {
		return nil, nil
	}
	pool, ok := m.pools[n.Pool]
	if !ok {
		return nil, fmt.Errorf("%s: network.pool %q: not defined in device.json", plat, n.Pool)
	}
	if !pool.Subnet.IsValid() || !pool.Subnet.Addr().Is4() {
		return nil, fmt.Errorf("%s: network pool %q: no IPv4 subnet", plat, n.Pool)
	}
	addr, err := m.pick(plat, pool, n.IP)
	if err != nil {
		return nil, err
	}
	m.used[addr], m.owned[plat] = plat, addr
	mac := n.MAC
	if mac == "" {
		mac = macFor(pool.Name, plat)
	}
	return &lxc.Net{
		Bridge:  pool.Bridge,
		Address: netip.PrefixFrom(addr, pool.Subnet.Bits()),
		Gateway: pool.Gateway,
		MAC:     mac,
	}, nil
}

func (m *IPAM) pick(plat string, pool state.Pool, static string) (netip.Addr, error) {
	if a, ok := m.owned[plat]; ok && pool.Subnet.Contains(a) && (static == "" || static == a.String()) {
		return a, nil
	}
	if static != "" {
		a, err := netip.ParseAddr(static)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("%s: network.ip %q: %w", plat, static, err)
		}
		if !m.usable(pool, a) {
			return netip.Addr{}, fmt.Errorf("%s: network.ip %s: not a host address of pool %q (%s)", plat, a, pool.Name, pool.Subnet)
		}
		if other, taken := m.used[a]; taken && other != plat {
			return netip.Addr{}, fmt.Errorf("%s: network.ip %s: already used by %s", plat, a, other)
		}
		return a, nil
	}
	for a := pool.Subnet.Masked().Addr().Next(); pool.Subnet.Contains(a); a = a.Next() {
		if _, taken := m.used[a]; !taken && m.usable(pool, a) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s: pool %q: %w", plat, pool.Name, ErrPoolExhausted)
}

// usable excludes the network and broadcast addresses and the gateway.
func (m *IPAM) usable(pool state.Pool, a netip.Addr) bool {
	if !a.Is4() || !pool.Subnet.Contains(a) || a == pool.Gateway || a == pool.Subnet.Masked().Addr() {
		return false
	}
	return pool.Subnet.Contains(a.Next()) // the last address is broadcast
}

// Release frees the address of plat.
func (m *IPAM) Release(plat string) {
	if a, ok := m.owned[plat]; ok {
		delete(m.used, a)
		delete(m.owned, plat)
	}
}

// macFor derives a stable locally administered MAC from pool and platform.
func macFor(pool, plat string) string {
	h := sha256.Sum256([]byte(pool + "\x00" + plat))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4])
}
