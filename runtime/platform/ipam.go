package platform

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"

	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// ErrPoolExhausted is returned when a pool has no free address left.
var ErrPoolExhausted = errors.New("network pool exhausted")

// IPAM hands out container addresses from device.json network pools. The
// host side (bridges, NAT) is runtime/network's. An address is kept for a
// platform across restarts of its container, of the daemon (the leases
// file) and across revisions, until Retain drops the platform: the first
// choice for a platform is derived from its name, so even a lost leases
// file gives mostly the same addresses back. One goroutine owns an IPAM.
type IPAM struct {
	pools  map[string]state.Pool
	used   map[netip.Addr]string // address → platform
	owned  map[string]netip.Addr // platform → address
	leases string                // file, "" = not persisted
}

// NewIPAM returns an allocator over pools (nil is fine: no pools).
func NewIPAM(pools map[string]state.Pool) *IPAM {
	return &IPAM{pools: pools, used: map[netip.Addr]string{}, owned: map[string]netip.Addr{}}
}

// Lease is one platform's address in the leases file.
type Lease struct {
	IP netip.Addr `json:"ip"`
}

// ParseLeases reads a leases file: {"<platform>": {"ip": "<IPv4>"}, …}.
// Two platforms with one address is an error.
func ParseLeases(data []byte) (map[string]netip.Addr, error) {
	var raw map[string]Lease
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("ipam leases: %w", err)
	}
	out := make(map[string]netip.Addr, len(raw))
	seen := map[netip.Addr]string{}
	for plat, l := range raw {
		if plat == "" || !l.IP.Is4() {
			return nil, fmt.Errorf("ipam leases: platform %q: bad lease %v", plat, l.IP)
		}
		if o, dup := seen[l.IP]; dup {
			return nil, fmt.Errorf("ipam leases: %s leased to %s and %s", l.IP, o, plat)
		}
		seen[l.IP] = plat
		out[plat] = l.IP
	}
	return out, nil
}

// LoadLeases makes m persist its addresses in path and takes back the
// ones saved there. A missing file is an empty one; a bad one is
// reported and replaced on the next change.
func (m *IPAM) LoadLeases(path string) error {
	m.leases = path
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipam leases: %w", err)
	}
	leases, err := ParseLeases(data)
	if err != nil {
		return err
	}
	for plat, a := range leases {
		m.used[a], m.owned[plat] = plat, a
	}
	return nil
}

func (m *IPAM) save() error {
	if m.leases == "" {
		return nil
	}
	out := make(map[string]Lease, len(m.owned))
	for p, a := range m.owned {
		out[p] = Lease{IP: a}
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(m.leases), 0o755); err != nil {
		return fmt.Errorf("ipam leases: %w", err)
	}
	if err := atomicfile.Write(m.leases, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("ipam leases: %w", err)
	}
	return nil
}

// SetPools replaces the pools (a new revision's device.json). Addresses
// outside every new pool are released.
func (m *IPAM) SetPools(pools map[string]state.Pool) error {
	m.pools = pools
	changed := false
	for plat, a := range m.owned {
		in := false
		for _, p := range pools {
			if p.Subnet.Contains(a) {
				in = true
				break
			}
		}
		if !in {
			delete(m.used, a)
			delete(m.owned, plat)
			changed = true
		}
	}
	if changed {
		return m.save()
	}
	return nil
}

// Pool returns the pool called name.
func (m *IPAM) Pool(name string) (state.Pool, bool) {
	p, ok := m.pools[name]
	return p, ok
}

// Assign returns the veth of platform plat for its run.json network, or
// nil when it shares the host network (no network object, or mode host).
// A platform keeps its address until Release or Retain drops it.
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
	if old, ok := m.owned[plat]; !ok || old != addr {
		if ok {
			delete(m.used, old)
		}
		m.used[addr], m.owned[plat] = plat, addr
		if err := m.save(); err != nil {
			return nil, err
		}
	}
	mac := n.MAC
	if mac == "" {
		mac = macFor(pool.Name, plat)
	}
	gw := pool.Gateway
	if !gw.IsValid() {
		gw = pool.Subnet.Masked().Addr().Next()
	}
	return &lxc.Net{
		Bridge:  pool.Bridge,
		Address: netip.PrefixFrom(addr, pool.Subnet.Bits()),
		Gateway: gw,
		MAC:     mac,
	}, nil
}

func (m *IPAM) pick(plat string, pool state.Pool, static string) (netip.Addr, error) {
	if a, ok := m.owned[plat]; ok && m.usable(pool, a) && (static == "" || static == a.String()) {
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
	// Start at an address derived from the name and walk the subnet.
	base := pool.Subnet.Masked().Addr().As4()
	first := binary.BigEndian.Uint32(base[:])
	size := uint64(1) << (32 - pool.Subnet.Bits())
	h := sha256.Sum256([]byte(pool.Name + "\x00" + plat))
	start := binary.BigEndian.Uint64(h[:8]) % size
	for i := uint64(0); i < size; i++ {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], first+uint32((start+i)%size))
		a := netip.AddrFrom4(b)
		if _, taken := m.used[a]; !taken && m.usable(pool, a) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s: pool %q: %w", plat, pool.Name, ErrPoolExhausted)
}

// usable excludes the network and broadcast addresses and the gateway.
func (m *IPAM) usable(pool state.Pool, a netip.Addr) bool {
	gw := pool.Gateway
	if !gw.IsValid() {
		gw = pool.Subnet.Masked().Addr().Next()
	}
	if !a.Is4() || !pool.Subnet.Contains(a) || a == gw || a == pool.Subnet.Masked().Addr() {
		return false
	}
	return pool.Subnet.Contains(a.Next()) // the last address is broadcast
}

// Release frees the address of plat.
func (m *IPAM) Release(plat string) error {
	if a, ok := m.owned[plat]; ok {
		delete(m.used, a)
		delete(m.owned, plat)
		return m.save()
	}
	return nil
}

// Retain releases the address of every platform not in keep (platforms
// that left the revision).
func (m *IPAM) Retain(keep []string) error {
	k := map[string]bool{}
	for _, p := range keep {
		k[p] = true
	}
	var gone []string
	for p := range m.owned {
		if !k[p] {
			gone = append(gone, p)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	sort.Strings(gone)
	for _, p := range gone {
		delete(m.used, m.owned[p])
		delete(m.owned, p)
	}
	return m.save()
}

// Leases returns a copy of the current addresses by platform.
func (m *IPAM) Leases() map[string]netip.Addr {
	out := make(map[string]netip.Addr, len(m.owned))
	for p, a := range m.owned {
		out[p] = a
	}
	return out
}

// macFor derives a stable locally administered MAC from pool and platform.
func macFor(pool, plat string) string {
	h := sha256.Sum256([]byte(pool + "\x00" + plat))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4])
}
