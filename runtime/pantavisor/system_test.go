package pantavisor

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/logserver"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// sysctlTree makes a /proc/sys stand-in with the files the tests set.
func sysctlTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range []string{"kernel/core_pattern", "net/ipv4/ip_forward"} {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStandalone: standalone mode applies the sysctls (the default core
// pattern included), serves the control socket, starts no container,
// leaves the revision alone and reboots the machine on REBOOT_DEVICE.
func TestStandalone(t *testing.T) {
	storage := newStorage(t)
	sys := sysctlTree(t)
	rr := &rebootRecorder{}
	called := false
	in := start(t, storage, func(o *Options) {
		o.Cmdline = "pv_rev=0 pv_standalone"
		o.Env = append(o.Env, "PV_SYSCTL_NET_IPV4_IP_FORWARD=1")
		o.SysctlRoot = sys
		o.SystemReboot = rr.reboot
		o.NewPlatforms = func(Env) (PlatformManager, error) { called = true; return &stepCounter{}, nil }
	})
	if got := readFile(t, filepath.Join(sys, "kernel/core_pattern")); got != "|/lib/pv/pvcrash --skip" {
		t.Errorf("core_pattern = %q, want the default pvcrash pattern", got)
	}
	if got := readFile(t, filepath.Join(sys, "net/ipv4/ip_forward")); got != "1" {
		t.Errorf("ip_forward = %q, want 1", got)
	}
	if called {
		t.Error("standalone mode made a platform manager")
	}
	if _, err := os.Stat(filepath.Join(storage, "trails", "0", ".pv", "progress")); err == nil {
		t.Error("standalone mode ran the factory revision (progress written)")
	}
	if code, _ := in.call(t, "GET", "/buildinfo", nil); code != 200 {
		t.Errorf("GET /buildinfo = %d, want the control socket served", code)
	}
	if code := in.command(t, "REBOOT_DEVICE"); code != 200 {
		t.Fatalf("REBOOT_DEVICE = %d", code)
	}
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no reboot after REBOOT_DEVICE")
	}
	if rr.count() != 1 {
		t.Errorf("machine reboots = %d, want 1", rr.count())
	}
}

// TestSysctlsNotInAppEngine: App Engine never writes the host's sysctls.
func TestSysctlsNotInAppEngine(t *testing.T) {
	sys := sysctlTree(t)
	in := start(t, newStorage(t), func(o *Options) {
		o.Env = append(o.Env, "PV_SYSCTL_NET_IPV4_IP_FORWARD=1")
		o.SysctlRoot = sys
	})
	in.stop()
	for _, f := range []string{"kernel/core_pattern", "net/ipv4/ip_forward"} {
		if got := readFile(t, filepath.Join(sys, f)); got != "old\n" {
			t.Errorf("%s = %q, want it untouched", f, got)
		}
	}
}

// TestLoggerOptions: PV_LOG_LOGGERS and PV_LOG_MAXSIZE reach the file
// loggers; a size that does not parse keeps the default.
func TestLoggerOptions(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		want LoggerOptions
	}{
		{nil, LoggerOptions{MaxSize: 2 << 20}},
		{[]string{"PV_LOG_LOGGERS=0"}, LoggerOptions{Off: true, MaxSize: 2 << 20}},
		{[]string{"PV_LOG_MAXSIZE=64K"}, LoggerOptions{MaxSize: 64 << 10}},
		{[]string{"PV_LOG_MAXSIZE=10%"}, LoggerOptions{}},
	} {
		c, err := config.Load(config.Options{Env: tt.env})
		if err != nil {
			t.Fatal(err)
		}
		if got := loggerOptions(c, nil); got != tt.want {
			t.Errorf("loggerOptions(%q) = %+v, want %+v", tt.env, got, tt.want)
		}
	}
}

// TestCaptureDmesg: kernel records are logged as pantavisor/dmesg in the
// device's modes, with their level, and not at all in App Engine or with
// PV_LOG_CAPTURE_DMESG=0.
func TestCaptureDmesg(t *testing.T) {
	kmsg := filepath.Join(t.TempDir(), "kmsg")
	if err := os.WriteFile(kmsg, []byte("3,1,100,-;disk on fire\n SUBSYSTEM=block\n6,2,200,-;eth0 up\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		mode Mode
		env  []string
		want string
	}{
		{Embedded, nil, "pantavisor/dmesg ERROR disk on fire\npantavisor/dmesg INFO eth0 up\n"},
		{Standalone, nil, "pantavisor/dmesg ERROR disk on fire\npantavisor/dmesg INFO eth0 up\n"},
		{Embedded, []string{"PV_LOG_CAPTURE_DMESG=0"}, ""},
		{AppEngine, nil, ""},
	} {
		c, err := config.Load(config.Options{Env: tt.env})
		if err != nil {
			t.Fatal(err)
		}
		logDir := t.TempDir()
		ls, err := logserver.New(logserver.Options{LogDir: logDir, Rev: "0", Level: int(logserver.All), MaxSize: 64 << 20, Outputs: []string{logserver.OutFiletree}})
		if err != nil {
			t.Fatal(err)
		}
		if err := ls.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		d := &Daemon{mode: tt.mode, conf: c, logs: ls, log: slog.New(slog.DiscardHandler)}
		d.captureDmesg(kmsg)
		time.Sleep(200 * time.Millisecond)
		ls.Close()
		b, _ := os.ReadFile(filepath.Join(logDir, "0", "pantavisor", "pantavisor.log"))
		var got strings.Builder
		for _, l := range strings.Split(string(b), "\n") {
			// [pantavisor] <tsec> <LEVEL>\t -- [dmesg]: <msg>
			if _, rest, ok := strings.Cut(l, "-- [dmesg]: "); ok {
				f := strings.Fields(l)
				got.WriteString("pantavisor/dmesg " + f[2] + " " + rest + "\n")
			}
		}
		if got.String() != tt.want {
			t.Errorf("%s %q: dmesg logged\n%s\nwant\n%s\n(log file:\n%s)", tt.mode, tt.env, got.String(), tt.want, b)
		}
	}
}

// TestLogCapture: PV_LOG_CAPTURE=0 subscribes no container output (console
// and file loggers) to the log server.
func TestLogCapture(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		want bool
	}{{nil, true}, {[]string{"PV_LOG_CAPTURE=0"}, false}} {
		c, err := config.Load(config.Options{Env: tt.env})
		if err != nil {
			t.Fatal(err)
		}
		st, err := storage.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		ls, err := logserver.New(logserver.Options{LogDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		m := containersFromEnv(Env{Mode: AppEngine, Storage: st, Config: c, Logs: ls, RunDir: t.TempDir()})
		if got := m.logs != nil; got != tt.want {
			t.Errorf("%q: container logs captured = %v, want %v", tt.env, got, tt.want)
		}
	}
}

// TestExportsDir: exporters' root file systems go to PV_DISK_EXPORTSDIR;
// App Engine keeps its default under the run dir (TestContainersLifecycle
// reads an exported file there).
func TestExportsDir(t *testing.T) {
	run := t.TempDir()
	for _, tt := range []struct {
		mode Mode
		env  []string
		want string
	}{
		{AppEngine, nil, filepath.Join(run, "exports")},
		{AppEngine, []string{"PV_DISK_EXPORTSDIR=/srv/exp"}, "/srv/exp"},
		{Embedded, nil, "/exports"},
		{Embedded, []string{"PV_DISK_EXPORTSDIR=/media/exp"}, "/media/exp"},
	} {
		c, err := config.Load(config.Options{Env: tt.env})
		if err != nil {
			t.Fatal(err)
		}
		st, err := storage.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		m := containersFromEnv(Env{Mode: tt.mode, Storage: st, Config: c, RunDir: run})
		if m.paths.Exports != tt.want {
			t.Errorf("%v %q: exports dir = %q, want %q", tt.mode, tt.env, m.paths.Exports, tt.want)
		}
	}
}

// TestLogStdout: PV_LOG_STDOUT=1 adds the stdout output to the configured
// ones, once, and a record reaches both stdout and the log files.
func TestLogStdout(t *testing.T) {
	for _, tt := range []struct {
		env    []string
		want   string // outputs
		stdout bool
	}{
		{nil, "filetree", false},
		{[]string{"PV_LOG_STDOUT=1"}, "filetree,stdout", true},
		{[]string{"PV_LOG_STDOUT=1", "PV_LOG_SERVER_OUTPUTS=singlefile,stdout.pantavisor"}, "singlefile,stdout", true},
		{[]string{"PV_LOG_STDOUT=0", "PV_LOG_SERVER_OUTPUTS=singlefile"}, "singlefile", false},
	} {
		c, err := config.Load(config.Options{Env: append([]string{"PV_LOG_LEVEL=5"}, tt.env...)})
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		d := &Daemon{conf: c, log: slog.New(slog.DiscardHandler), runDir: t.TempDir(), root: root,
			logDir: filepath.Join(root, "logs"), rev: "0"}
		o := d.logOptions()
		if got := strings.Join(o.Outputs, ","); got != tt.want || d.logsToStdout() != tt.stdout {
			t.Errorf("%q: outputs %q, pantavisor on stdout %v; want %q, %v", tt.env, got, d.logsToStdout(), tt.want, tt.stdout)
		}
		var out syncBuf
		o.Stdout = &out
		s, err := logserver.New(o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		slog.New(s.Handler()).Info("hello console")
		s.Sync()
		cancel()
		s.Close()
		if got := strings.Contains(out.String(), "hello console"); got != tt.stdout {
			t.Errorf("%q: record on stdout = %v, want %v (stdout %q)", tt.env, got, tt.stdout, out.String())
		}
	}
}

// TestUsrDir: PV_SYSTEM_USRDIR set puts the containers' lxcpath and
// lxc.rootfs.mount below it, as upstream; unset, they stay in the run dir
// (tests/containers/15 starts a container with it set).
func TestUsrDir(t *testing.T) {
	run := t.TempDir()
	for _, tt := range []struct {
		env           []string
		lxcpath, root string
	}{
		{nil, filepath.Join(run, "lxc"), ""},
		{[]string{"PV_SYSTEM_USRDIR=/opt/usr"}, "/opt/usr/var/lib/lxc", "/opt/usr/lib/lxc/rootfs"},
	} {
		c, err := config.Load(config.Options{Env: tt.env})
		if err != nil {
			t.Fatal(err)
		}
		st, err := storage.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		m := containersFromEnv(Env{Mode: AppEngine, Storage: st, Config: c, RunDir: run})
		if m.paths.LXCPath != tt.lxcpath || m.paths.RootfsMount != tt.root {
			t.Errorf("%q: lxcpath %q, rootfs mount %q; want %q, %q", tt.env, m.paths.LXCPath, m.paths.RootfsMount, tt.lxcpath, tt.root)
		}
		if got, _ := lxcPaths(c, run); got != tt.lxcpath {
			t.Errorf("%q: ssh enters lxcpath %q, want %q", tt.env, got, tt.lxcpath)
		}
	}
}

func TestConsoleLoglevel(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]int{"7\t4\t1\t7\n": 7, "4 4 1 7": 4, "": 0, "x 4": 0, "-1 4": 0} {
		p := filepath.Join(dir, "printk")
		os.WriteFile(p, []byte(content), 0o644)
		if got := consoleLoglevel(p); got != want {
			t.Errorf("consoleLoglevel(%q) = %d, want %d", content, got, want)
		}
	}
	if got := consoleLoglevel(filepath.Join(dir, "none")); got != 0 {
		t.Errorf("consoleLoglevel(missing) = %d, want 0", got)
	}
}
