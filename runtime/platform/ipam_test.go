package platform

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

func TestIPAM(t *testing.T) {
	pools := map[string]state.Pool{
		"int": {Name: "int", Bridge: "pvbr0", Subnet: netip.MustParsePrefix("10.0.5.0/29"), Gateway: netip.MustParseAddr("10.0.5.1")},
	}
	m := NewIPAM(pools)
	if n, err := m.Assign("h", &state.Network{Mode: "host"}); n != nil || err != nil {
		t.Errorf("Assign(host) = %v, %v, want nil", n, err)
	}
	if n, err := m.Assign("h", nil); n != nil || err != nil {
		t.Errorf("Assign(nil) = %v, %v, want nil", n, err)
	}
	s, err := m.Assign("s", &state.Network{Mode: "pool", Pool: "int", IP: "10.0.5.6", MAC: "02:aa:bb:cc:dd:ee"})
	if err != nil || s.Address.String() != "10.0.5.6/29" || s.MAC != "02:aa:bb:cc:dd:ee" {
		t.Errorf("Assign(static) = %+v, %v, want 10.0.5.6/29", s, err)
	}
	a, err := m.Assign("a", &state.Network{Mode: "pool", Pool: "int"})
	if err != nil || !usableIn(a.Address.Addr(), "10.0.5.2", "10.0.5.3", "10.0.5.4", "10.0.5.5") || a.Address.Bits() != 29 ||
		a.Bridge != "pvbr0" || a.Gateway.String() != "10.0.5.1" || !strings.HasPrefix(a.MAC, "02:") {
		t.Fatalf("Assign(a) = %+v, %v, want a host address of 10.0.5.0/29 on pvbr0", a, err)
	}
	again, _ := m.Assign("a", &state.Network{Mode: "pool", Pool: "int"})
	if again.Address != a.Address || again.MAC != a.MAC {
		t.Errorf("second Assign(a) = %+v, want the same address and MAC", again)
	}
	bad := []struct {
		plat string
		n    state.Network
		want string
	}{
		{"x", state.Network{Mode: "pool", Pool: "nope"}, `network.pool "nope"`},
		{"x", state.Network{Mode: "pool", Pool: "int", IP: "10.0.5.1"}, "not a host address"},
		{"x", state.Network{Mode: "pool", Pool: "int", IP: "10.0.5.7"}, "not a host address"},
		{"x", state.Network{Mode: "pool", Pool: "int", IP: "10.0.6.2"}, "not a host address"},
		{"x", state.Network{Mode: "pool", Pool: "int", IP: "10.0.5.6"}, "already used by s"},
		{"x", state.Network{Mode: "pool", Pool: "int", IP: "junk"}, `network.ip "junk"`},
	}
	for _, tc := range bad {
		if _, err := m.Assign(tc.plat, &tc.n); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Assign(%+v) error = %v, want %q", tc.n, err, tc.want)
		}
	}
	// Three of .2-.5 remain.
	for _, p := range []string{"b", "c", "d"} {
		if _, err := m.Assign(p, &state.Network{Mode: "pool", Pool: "int"}); err != nil {
			t.Errorf("Assign(%s) error = %v", p, err)
		}
	}
	if _, err := m.Assign("e", &state.Network{Mode: "pool", Pool: "int"}); !errors.Is(err, ErrPoolExhausted) {
		t.Errorf("Assign(e) error = %v, want ErrPoolExhausted", err)
	}
	c := m.Leases()["c"]
	if err := m.Release("c"); err != nil {
		t.Fatal(err)
	}
	if e, err := m.Assign("e", &state.Network{Mode: "pool", Pool: "int"}); err != nil || e.Address.Addr() != c {
		t.Errorf("Assign(e) after Release(c) = %+v, %v, want %s", e, err, c)
	}
	if err := m.Retain([]string{"a", "s"}); err != nil {
		t.Fatal(err)
	}
	if l := m.Leases(); len(l) != 2 || l["a"] != a.Address.Addr() || l["s"].String() != "10.0.5.6" {
		t.Errorf("Leases() after Retain(a, s) = %v", l)
	}
	// A pool whose subnet changed drops the addresses outside it.
	if err := m.SetPools(map[string]state.Pool{"int": {Name: "int", Bridge: "pvbr0", Subnet: netip.MustParsePrefix("10.0.9.0/24")}}); err != nil {
		t.Fatal(err)
	}
	if l := m.Leases(); len(l) != 0 {
		t.Errorf("Leases() after the subnet moved = %v, want none", l)
	}
	n, err := m.Assign("a", &state.Network{Mode: "pool", Pool: "int"})
	if err != nil || n.Gateway.String() != "10.0.9.1" || n.Address.Addr() == n.Gateway {
		t.Errorf("Assign without a gateway = %+v, %v, want gateway 10.0.9.1 (the first host)", n, err)
	}
}

func usableIn(a netip.Addr, want ...string) bool {
	for _, w := range want {
		if a.String() == w {
			return true
		}
	}
	return false
}

// TestIPAMStable: a platform's first choice comes from its name, so two
// allocators that see platforms in different orders agree, and the leases
// file carries addresses over a restart.
func TestIPAMStable(t *testing.T) {
	pools := map[string]state.Pool{"p": {Name: "p", Bridge: "b", Subnet: netip.MustParsePrefix("10.1.0.0/16")}}
	n := &state.Network{Mode: "pool", Pool: "p"}
	one, two := NewIPAM(pools), NewIPAM(pools)
	names := []string{"web", "db", "mqtt", "ui"}
	for i := range names {
		if _, err := one.Assign(names[i], n); err != nil {
			t.Fatal(err)
		}
		if _, err := two.Assign(names[len(names)-1-i], n); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range names {
		if one.Leases()[p] != two.Leases()[p] {
			t.Errorf("%s: %s in one order, %s in the other", p, one.Leases()[p], two.Leases()[p])
		}
	}
	file := filepath.Join(t.TempDir(), "cache", "ipam.json")
	m := NewIPAM(pools)
	if err := m.LoadLeases(file); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Assign("web", &state.Network{Mode: "pool", Pool: "p", IP: "10.1.2.3"}); err != nil {
		t.Fatal(err)
	}
	r := NewIPAM(pools)
	if err := r.LoadLeases(file); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Assign("web", n); err != nil || got.Address.Addr().String() != "10.1.2.3" {
		t.Errorf("Assign(web) after restart = %v, %v, want 10.1.2.3", got, err)
	}
}

func TestParseLeases(t *testing.T) {
	if l, err := ParseLeases([]byte(`{"a":{"ip":"10.0.0.2"},"b":{"ip":"10.0.0.3"}}`)); err != nil || len(l) != 2 || l["b"].String() != "10.0.0.3" {
		t.Errorf("ParseLeases(good) = %v, %v", l, err)
	}
	for _, in := range []string{`[]`, `{"a":{"ip":"::1"}}`, `{"a":{"ip":"10.0.0.2"},"b":{"ip":"10.0.0.2"}}`, `{"":{"ip":"10.0.0.2"}}`, `{"a":{}}`, `{`} {
		if _, err := ParseLeases([]byte(in)); err == nil {
			t.Errorf("ParseLeases(%s) error = nil, want one", in)
		}
	}
}

func FuzzParseLeases(f *testing.F) {
	f.Add([]byte(`{"a":{"ip":"10.0.0.2"}}`))
	f.Add([]byte(`{"a":{"ip":"10.0.0.2"},"b":{"ip":"10.0.0.2"}}`))
	f.Add([]byte(`{"a":{"ip":"fe80::1"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLeases(data)
		if err != nil {
			return
		}
		seen := map[netip.Addr]bool{}
		for p, a := range l {
			if p == "" || !a.Is4() || seen[a] {
				t.Fatalf("ParseLeases(%q) accepted %q → %v", data, p, a)
			}
			seen[a] = true
		}
	})
}
