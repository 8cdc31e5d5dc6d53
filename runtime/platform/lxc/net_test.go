//go:build cgo && linux

package lxc

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// TestVeth starts a container with its own network namespace on a
// throw-away bridge and checks its address from inside.
func TestVeth(t *testing.T) {
	needLXC(t)
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Skipf(t, "skipping: no ip command (Debian iproute2)")
	}
	const br = "pvtestbr0"
	exec.Command("ip", "link", "del", br).Run()
	if out, err := exec.Command("ip", "link", "add", br, "type", "bridge").CombinedOutput(); err != nil {
		testenv.Skipf(t, "skipping: cannot create a bridge: %v: %s", err, out)
	}
	defer exec.Command("ip", "link", "del", br).Run()
	exec.Command("ip", "link", "set", br, "up").Run()

	w := newWorld(t, "vethbox", "")
	w.spec.Net = &Net{Bridge: br, Address: netip.MustParsePrefix("10.211.0.2/24"), Gateway: netip.MustParseAddr("10.211.0.1"), MAC: "02:00:00:11:22:33"}
	c := startReady(t, w)
	out := filepath.Join(t.TempDir(), "out")
	f, _ := os.Create(out)
	status, err := Attach(w.spec.LXCPath, "vethbox", []string{"/bin/sh", "-c", "ip addr show eth0; ip route"}, nil, os.Stdin, f, f)
	f.Close()
	got, _ := os.ReadFile(out)
	for _, want := range []string{"10.211.0.2/24", "02:00:00:11:22:33", "default via 10.211.0.1"} {
		if err != nil || status != 0 || !strings.Contains(string(got), want) {
			t.Errorf("ip addr/route inside = %d, %v, %q, want %q", status, err, got, want)
		}
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Errorf("Stop() error = %v", err)
	}
	w.finish(t)
}
