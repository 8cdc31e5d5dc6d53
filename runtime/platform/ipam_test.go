package platform

import (
	"errors"
	"net/netip"
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
	a, err := m.Assign("a", &state.Network{Mode: "pool", Pool: "int"})
	if err != nil || a.Address.String() != "10.0.5.2/29" || a.Bridge != "pvbr0" || a.Gateway.String() != "10.0.5.1" || !strings.HasPrefix(a.MAC, "02:") {
		t.Fatalf("Assign(a) = %+v, %v, want 10.0.5.2/29 on pvbr0", a, err)
	}
	again, _ := m.Assign("a", &state.Network{Mode: "pool", Pool: "int"})
	if again.Address != a.Address || again.MAC != a.MAC {
		t.Errorf("second Assign(a) = %+v, want the same address and MAC", again)
	}
	s, err := m.Assign("s", &state.Network{Mode: "pool", Pool: "int", IP: "10.0.5.6", MAC: "02:aa:bb:cc:dd:ee"})
	if err != nil || s.Address.String() != "10.0.5.6/29" || s.MAC != "02:aa:bb:cc:dd:ee" {
		t.Errorf("Assign(static) = %+v, %v, want 10.0.5.6/29", s, err)
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
	// .3, .4, .5 remain.
	for _, p := range []string{"b", "c", "d"} {
		if _, err := m.Assign(p, &state.Network{Mode: "pool", Pool: "int"}); err != nil {
			t.Errorf("Assign(%s) error = %v", p, err)
		}
	}
	if _, err := m.Assign("e", &state.Network{Mode: "pool", Pool: "int"}); !errors.Is(err, ErrPoolExhausted) {
		t.Errorf("Assign(e) error = %v, want ErrPoolExhausted", err)
	}
	m.Release("c")
	if e, err := m.Assign("e", &state.Network{Mode: "pool", Pool: "int"}); err != nil || e.Address.String() != "10.0.5.4/29" {
		t.Errorf("Assign(e) after Release(c) = %+v, %v, want 10.0.5.4/29", e, err)
	}
}
