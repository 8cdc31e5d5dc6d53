package xconnect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/pvtest/dbuswire"
)

// dbusConfig is a system bus on <dir>/bus.sock where anyone may connect
// and call, and only nobody may own org.pantavisor.Example.
const dbusConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
  <policy user="nobody">
    <allow own="org.pantavisor.Example"/>
  </policy>
</busconfig>
`

// dbusDaemon runs a real dbus-daemon (Debian dbus-daemon) on dir/bus.sock.
func dbusDaemon(t testing.TB, dir string) string {
	t.Helper()
	testenv.NeedRoot(t, "connecting with another user's credentials")
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		testenv.Skipf(t, "dbus-daemon not installed (Debian dbus-daemon)")
	}
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(dbusConfig, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--nofork", "--nopidfile", "--config-file="+conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("dbus-daemon: %s", out.String())
		}
	})
	sock := filepath.Join(dir, "bus.sock")
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 200 {
			t.Fatalf("dbus-daemon did not make %s", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return sock
}

// whoami connects to bus and returns the uid the bus gives the
// connection and what it answered to RequestName(org.pantavisor.Example).
func whoami(t *testing.T, bus string) (uint32, string) {
	t.Helper()
	c, err := dbuswire.Dial(bus)
	if err != nil {
		t.Fatalf("Dial(%s) = %v", bus, err)
	}
	defer c.Close()
	uid, err := c.Call(dbuswire.Bus, dbuswire.BusPath, dbuswire.Bus, "GetConnectionUnixUser", c.Name)
	if err != nil {
		t.Fatalf("GetConnectionUnixUser = %v", err)
	}
	own := ""
	if v, err := c.Call(dbuswire.Bus, dbuswire.BusPath, dbuswire.Bus, "RequestName", "org.pantavisor.Example", uint32(0)); err != nil {
		var e *dbuswire.Error
		if !errors.As(err, &e) {
			t.Fatalf("RequestName = %v", err)
		}
		own = e.Name
	} else {
		own = fmt.Sprint(v)
	}
	return uid.(uint32), own
}

// A consumer reaches a real dbus-daemon through the dbus plugin as the
// uid its role has in the provider's /etc/passwd (here the host's: the
// provider is this process), whatever it claims itself; the bus's XML
// policy applies to that uid. (A uid without a passwd entry is refused
// by dbus-daemon itself.)
func TestMeshDBusMasquerade(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // the role's user connects
		t.Fatal(err)
	}
	bus := dbusDaemon(t, dir)
	if uid, own := whoami(t, bus); uid != 0 || own != "org.freedesktop.DBus.Error.AccessDenied" {
		t.Fatalf("directly: uid %d, RequestName %s; want 0, AccessDenied", uid, own)
	}
	m := NewMesh(testLog(t), "")
	defer m.Close()
	link := func(role, target string) ctrl.XConnectLink {
		l := selfLink("dbus", dir)
		l.Role, l.Socket, l.Target = role, bus, dir+"/consumer/"+target
		return l
	}
	links := []ctrl.XConnectLink{link("nobody", "nobody.sock"), link("1", "numeric.sock"), link("no-such-role", "unknown.sock")}
	if err := m.Reconcile(links); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		l    ctrl.XConnectLink
		uid  uint32
		own  string
		name string
	}{
		{links[0], Nobody, "1", "role nobody: its uid, and the policy lets it own the name"},
		{links[1], 1, "org.freedesktop.DBus.Error.AccessDenied", "numeric role: that uid (daemon), the policy denies it"},
		{links[2], Nobody, "1", "role missing from passwd: nobody"},
	} {
		uid, own := whoami(t, tc.l.Target)
		if uid != tc.uid || own != tc.own {
			t.Errorf("%s: uid %d, RequestName %s; want %d, %s", tc.name, uid, own, tc.uid, tc.own)
		}
	}
	// libdbus itself (dbus-send: EXTERNAL with its uid, NEGOTIATE_UNIX_FD)
	// through the proxy.
	if send, err := exec.LookPath("dbus-send"); err == nil {
		out, err := exec.Command(send, "--bus=unix:path="+links[0].Target, "--print-reply", "--dest=org.freedesktop.DBus",
			"/org/freedesktop/DBus", "org.freedesktop.DBus.GetConnectionUnixUser", "string:org.freedesktop.DBus").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "uint32 0") {
			t.Errorf("dbus-send through the proxy: %v: %s", err, out)
		}
	} else {
		testenv.Skipf(t, "dbus-send not installed (Debian dbus-bin)")
	}
}

// BenchmarkDBusCall is one method call to the bus (GetId) on an open
// connection: direct, and through the dbus plugin.
func BenchmarkDBusCall(b *testing.B) {
	dir := b.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	bus := dbusDaemon(b, dir)
	m := NewMesh(nil, "")
	defer m.Close()
	l := selfLink("dbus", dir)
	l.Role, l.Socket, l.Target = "nobody", bus, dir+"/consumer/bus.sock"
	if err := m.Reconcile([]ctrl.XConnectLink{l}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{{"direct", bus}, {"proxy", l.Target}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := dbuswire.Dial(tc.path)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Call(dbuswire.Bus, dbuswire.BusPath, dbuswire.Bus, "GetId"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
