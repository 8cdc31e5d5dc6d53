package pantavisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/platform"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// poolState is a revision with a NAT pool and platforms in it.
func poolState(t *testing.T, plats ...string) *state.State {
	t.Helper()
	const sha = "0000000000000000000000000000000000000000000000000000000000000000"
	var b strings.Builder
	b.WriteString(`{"#spec":"pantavisor-service-system@1","device.json":{"network":{"pools":{"int":{"bridge":"pvbr9","subnet":"10.219.0.0/24","nat":true}}}}`)
	for _, p := range plats {
		fmt.Fprintf(&b, `,"%[1]s/root.squashfs":"%[2]s","%[1]s/lxc.container.conf":"%[2]s","%[1]s/run.json":{"#spec":"service-manifest-run@1","name":"%[1]s","type":"lxc","config":"lxc.container.conf","root-volume":"root.squashfs","volumes":[],"storage":{"lxc-overlay":{"persistence":"boot"}},"network":{"mode":"pool","pool":"int"}}`, p, sha)
	}
	b.WriteString("}")
	st, err := state.Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("state.Parse() = %v", err)
	}
	return st
}

// TestContainersIPAM: the daemon's one IPAM lives across revisions; a
// platform that leaves the revision gives its address back, in the leases
// file too.
func TestContainersIPAM(t *testing.T) {
	leases := filepath.Join(t.TempDir(), "cache", "ipam.json")
	m := NewContainers(ContainersOptions{Paths: platform.Paths{Storage: t.TempDir()}, IPAMLeases: leases})
	if err := m.Load("1", poolState(t, "neta", "netb")); err != nil {
		t.Fatal(err)
	}
	var errs []error
	m.call(func() {
		for _, p := range []string{"neta", "netb"} {
			if _, err := m.ipam.Assign(p, m.st.Platform(p).Network); err != nil {
				errs = append(errs, err)
			}
		}
	})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	before, _ := os.ReadFile(leases)
	if !strings.Contains(string(before), `"netb"`) {
		t.Fatalf("leases = %s, want netb in it", before)
	}
	if err := m.Load("2", poolState(t, "neta")); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(leases)
	if strings.Contains(string(after), `"netb"`) || !strings.Contains(string(after), `"neta"`) {
		t.Errorf("leases after netb left = %s, want neta only", after)
	}
	// A new daemon takes neta's address back from the file.
	n := NewContainers(ContainersOptions{Paths: platform.Paths{Storage: t.TempDir()}, IPAMLeases: leases})
	var got, want string
	m.call(func() { want = m.ipam.Leases()["neta"].String() })
	n.call(func() { got = n.ipam.Leases()["neta"].String() })
	if got != want || want == "invalid IP" {
		t.Errorf("neta after restart = %s, want %s", got, want)
	}
}
