//go:build cgo && linux

package container

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
)

// records keeps the messages an slog.Logger writes.
type records struct {
	mu   sync.Mutex
	msgs []string
	t    *testing.T
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	r.t.Logf("%s %s", rec.Level, rec.Message)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

// console collects a container's console and tells when a line arrives.
type console struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{} // closed and replaced on each write
	eof  chan struct{}
}

func readConsole(f *os.File) *console {
	c := &console{more: make(chan struct{}), eof: make(chan struct{})}
	go func() {
		defer close(c.eof)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			c.mu.Lock()
			c.buf.Write(b[:n])
			close(c.more)
			c.more = make(chan struct{})
			c.mu.Unlock()
			if err != nil {
				f.Close()
				return
			}
		}
	}()
	return c
}

// await waits for s on the console.
func (c *console) await(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		got, more := c.buf.String(), c.more
		c.mu.Unlock()
		if strings.Contains(got, s) {
			return
		}
		select {
		case <-more:
		case <-c.eof:
			t.Fatalf("console ended without %q:\n%s", s, got)
		case <-deadline:
			t.Fatalf("no %q on the console within 30s:\n%s", s, got)
		}
	}
}

// TestInitStops starts each default container's rootfs and init under
// real LXC and stops it as the daemon does: the init must exit on LXC's
// halt signal, so the stop never falls back to SIGKILL after the timeout.
func TestInitStops(t *testing.T) {
	testenv.NeedRoot(t, "runs LXC containers")
	if err := lxc.Available(); err != nil {
		testenv.Skipf(t, "%v", err)
	}
	if !lxc.Supported("lxc.rootfs.path") {
		testenv.Skipf(t, "liblxc not usable")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testenv.Skipf(t, "no /bin/busybox (Debian busybox-static)")
	}
	pvc := fakeBin(t, t.TempDir(), "pvcontrol")
	for _, tc := range []struct {
		template, ready string
	}{
		{Mgmt, "pv-mgmt: started"},
		// In a network namespace of its own with an unattached veth: the
		// host's NICs are left alone, udhcpc runs (and gets no lease).
		{Network, "udhcpc: started"},
	} {
		t.Run(tc.template, func(t *testing.T) {
			name := fmt.Sprintf("pvt-init-%s-%d", tc.template, os.Getpid())
			dir := t.TempDir()
			s := Spec{Name: name, Template: tc.template, Busybox: "/bin/busybox", Pvcontrol: pvc}
			root := filepath.Join(dir, "rootfs")
			init, err := s.rootfs(root)
			must(t, err)
			conf := LXCConf(name, init)
			conf = strings.Replace(conf, "lxc.rootfs.path = overlayfs:/volumes/"+name+"/root.squashfs:/volumes/"+name+"/lxc-overlay/upper",
				"lxc.rootfs.path = dir:"+root, 1)
			if tc.template == Network {
				conf = strings.Replace(conf, "lxc.namespace.keep = user net ipc", "lxc.namespace.keep = user ipc", 1)
				conf += "lxc.net.0.type = veth\nlxc.net.0.name = eth0\n"
			}
			confFile := filepath.Join(dir, "lxc.container.conf")
			must(t, os.WriteFile(confFile, []byte(conf), 0o644))
			rec := &records{t: t}
			spec := lxc.Spec{Name: name, LXCPath: filepath.Join(dir, "lxc"), ConfigFile: confFile,
				// Generous: a clean stop takes milliseconds; an init that
				// ignores the halt signal is killed after this.
				StopTimeout: 30 * time.Second}
			c, err := lxc.Start(context.Background(), slog.New(rec), spec)
			if err != nil {
				log, _ := os.ReadFile(filepath.Join(dir, "lxc", name, "lxc.log"))
				t.Fatalf("Start() = %v\n%s", err, log)
			}
			con := readConsole(c.Console())
			con.await(t, tc.ready)
			if err := c.Stop(context.Background()); err != nil {
				t.Errorf("Stop() = %v", err)
			}
			if rec.has("container did not shut down, killing") {
				t.Errorf("%s init ignored the halt signal: Stop killed it", tc.template)
			}
			<-con.eof
			con.await(t, "pv-"+tc.template+": stopping")
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
