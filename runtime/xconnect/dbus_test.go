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

	"github.com/godbus/dbus/v5"
	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
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

// busCall bounds one call to the bus.
const busCall = 10 * time.Second

// whoami connects to bus with godbus and returns the uid the bus gives
// the connection and what it answered to RequestName(org.pantavisor.Example).
// godbus's EXTERNAL claims no uid (it answers the bus's DATA question
// with nothing: the socket's credentials), so this is the proxy's DATA
// path; libdbus's initial response is dbus-send's, below.
func whoami(t *testing.T, bus string) (uint32, string) {
	t.Helper()
	c, err := dbus.Connect("unix:path=" + bus)
	if err != nil {
		t.Fatalf("Connect(%s) = %v", bus, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), busCall)
	defer cancel()
	var uid uint32
	if err := c.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixUser", 0, c.Names()[0]).Store(&uid); err != nil {
		t.Fatalf("GetConnectionUnixUser = %v", err)
	}
	var reply uint32
	if err := c.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.RequestName", 0, "org.pantavisor.Example", uint32(0)).Store(&reply); err != nil {
		var e dbus.Error
		if !errors.As(err, &e) {
			t.Fatalf("RequestName = %v", err)
		}
		return uid, e.Name
	}
	return uid, fmt.Sprint(reply)
}

// sendRequestName asks for org.pantavisor.Example on bus with dbus-send
// (libdbus: EXTERNAL with the uid it runs as in the initial response,
// then NEGOTIATE_UNIX_FD) and returns the reply's value or the error's
// name, as whoami does.
func sendRequestName(t *testing.T, send, bus string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), busCall)
	defer cancel()
	out, err := exec.CommandContext(ctx, send, "--bus=unix:path="+bus, "--print-reply", "--dest=org.freedesktop.DBus",
		"/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName", "string:org.pantavisor.Example", "uint32:0").CombinedOutput()
	s := strings.TrimSpace(string(out))
	if _, v, ok := strings.Cut(s, "uint32 "); ok && err == nil {
		return v
	}
	if rest, ok := strings.CutPrefix(s, "Error "); ok && err != nil {
		if name, _, ok := strings.Cut(rest, ":"); ok {
			return name
		}
	}
	t.Fatalf("dbus-send RequestName on %s: %v: %s", bus, err, out)
	return ""
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
	// libdbus (dbus-send) claims uid 0, which only the proxy's rewrite
	// of its initial response makes the bus accept from the role's
	// connection: the same answers prove the bus took the role's uid.
	send, err := exec.LookPath("dbus-send")
	if err != nil {
		testenv.Skipf(t, "dbus-send not installed (Debian dbus-bin)")
	}
	if own := sendRequestName(t, send, bus); own != "org.freedesktop.DBus.Error.AccessDenied" {
		t.Errorf("dbus-send directly: RequestName %s; want AccessDenied", own)
	}
	for _, tc := range []struct {
		l   ctrl.XConnectLink
		own string
	}{{links[0], "1"}, {links[1], "org.freedesktop.DBus.Error.AccessDenied"}, {links[2], "1"}} {
		if own := sendRequestName(t, send, tc.l.Target); own != tc.own {
			t.Errorf("dbus-send through role %s: RequestName %s; want %s", tc.l.Role, own, tc.own)
		}
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
			c, err := dbus.Connect("unix:path=" + tc.path)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			bus := c.BusObject()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := bus.Call("org.freedesktop.DBus.GetId", 0).Err; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
