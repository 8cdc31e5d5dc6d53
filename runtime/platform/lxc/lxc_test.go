//go:build cgo && linux

package lxc

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/volume"
	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// needLXC skips unless the test can really run containers.
func needLXC(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: running containers needs root")
	}
	if !Supported("lxc.rootfs.path") {
		testenv.Skipf(t, "skipping: liblxc not usable")
	}
	if err := rootfs.Available(); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
}

// world is a throw-away Pantavisor layout with one mounted platform.
type world struct {
	dir    string
	layout volume.Layout
	set    *volume.Set
	spec   Spec
}

// newWorld builds the fixture image, materialises a trail with the platform
// name (conf and _config included) and mounts its volumes.
func newWorld(t testing.TB, name string, conf string, files ...rootfs.File) *world {
	t.Helper()
	files = append([]rootfs.File{{Path: "/etc/fixture", Data: []byte("from squashfs\n")}}, files...)
	img, err := rootfs.Build(rootfs.Options{Files: files})
	if err != nil {
		t.Fatalf("rootfs.Build() error = %v", err)
	}
	dir := t.TempDir()
	w := &world{dir: dir, layout: volume.Layout{
		VolumesDir: filepath.Join(dir, "volumes"),
		DisksDir:   filepath.Join(dir, "storage", "disks"),
		ConfigsDir: filepath.Join(dir, "configs"),
	}}
	plat := filepath.Join(dir, "storage", "trails", "1", name)
	cfg := filepath.Join(dir, "storage", "trails", "1", "_config", name)
	must(t, os.MkdirAll(plat, 0o755))
	must(t, os.MkdirAll(filepath.Join(cfg, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(cfg, "etc", "pv-config"), []byte("from _config\n"), 0o644))
	if err := os.Link(img, filepath.Join(plat, "root.squashfs")); err != nil {
		data, _ := os.ReadFile(img)
		must(t, os.WriteFile(filepath.Join(plat, "root.squashfs"), data, 0o644))
	}
	if conf == "" {
		conf = rootfs.LXCConf(rootfs.Conf{Name: name})
	}
	must(t, os.WriteFile(filepath.Join(plat, "lxc.container.conf"), []byte(conf), 0o644))
	w.set, err = volume.MountPlatform(testLog(t), w.layout, volume.Platform{
		Name: name, Rev: "1", Dir: plat, ConfigDir: cfg,
		Volumes: []string{"root.squashfs"},
		Storage: map[string]volume.Persistence{"lxc-overlay": volume.Boot},
	})
	if err != nil {
		t.Fatalf("MountPlatform() error = %v", err)
	}
	run := filepath.Join(dir, "run")
	must(t, os.MkdirAll(run, 0o755))
	w.spec = Spec{
		Name: name, Group: "app", Rev: "1",
		LXCPath:       filepath.Join(run, "lxc"),
		ConfigFile:    filepath.Join(plat, "lxc.container.conf"),
		VolumesDir:    w.layout.VolumesDir,
		ConfigOverlay: w.layout.ConfigOverlay(name),
		RunDir:        run,
		RootfsMount:   filepath.Join(dir, "rootfs"),
		StopTimeout:   2 * time.Second,
	}
	t.Cleanup(func() { w.set.Unmount() })
	return w
}

// startReady starts w's container and waits for the fixture init's banner
// (its halt trap is installed by then), draining the console afterwards.
func startReady(t testing.TB, w *world) *Container {
	t.Helper()
	c, err := Start(context.Background(), testLog(t), w.spec)
	if err != nil {
		t.Fatalf("Start() error = %v", err)
	}
	banner := make(chan struct{})
	go func() {
		br := bufio.NewReader(c.Console())
		br.ReadString('\n')
		close(banner)
		io.Copy(io.Discard, br)
		c.Console().Close()
	}()
	select {
	case <-banner:
	case <-time.After(10 * time.Second):
		t.Errorf("no init banner within 10s")
	}
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// finish unmounts the world and fails on anything left behind.
func (w *world) finish(t testing.TB) {
	t.Helper()
	noCgroups(t, w.spec.Name)
	if err := w.set.Unmount(); err != nil {
		t.Errorf("Unmount() error = %v", err)
	}
	var leaks []string
	for i := 0; i < 100; i++ {
		leaks, _ = volume.OwnLeaks(w.dir)
		if len(leaks) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("Leaks() = %q, want none", leaks)
}

// noCgroups fails if a cgroup of container name is left in any hierarchy.
func noCgroups(t testing.TB, name string) {
	t.Helper()
	roots, _ := cgroupRoots()
	for _, r := range roots {
		for _, d := range []string{MonitorCgroup(name), PayloadCgroup(name)} {
			if _, err := os.Stat(filepath.Join(r, d)); err == nil {
				t.Errorf("cgroup %s left in %s", d, r)
			}
		}
	}
}

func TestContainerLifecycle(t *testing.T) {
	needLXC(t)
	w := newWorld(t, "app", "")
	ctx := context.Background()
	self, _ := os.ReadFile("/proc/self/cgroup")
	c, err := Start(ctx, testLog(t), w.spec)
	if err != nil {
		t.Fatalf("Start() error = %v", err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(c.Console())
		for sc.Scan() {
			lines <- sc.Text()
		}
		c.Console().Close()
		close(lines)
	}()
	if rc, err := c.Console().SyscallConn(); err == nil {
		var size int
		rc.Control(func(fd uintptr) { size, _ = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) })
		if size < 64<<10 {
			t.Errorf("console FIFO size = %d, want ≥ 64 KiB", size)
		}
	}
	pid := c.Pid()
	if pid <= 0 {
		t.Fatalf("Pid() = %d, want > 0", pid)
	}
	// Nothing of this process may leak into the container (sockets, FIFO).
	fds, _ := os.ReadDir(filepath.Join("/proc", itoa(pid), "fd"))
	for _, fd := range fds {
		l, _ := os.Readlink(filepath.Join("/proc", itoa(pid), "fd", fd.Name()))
		// The shell's own script (/sbin/init) and the console pty are fine.
		for _, bad := range []string{"socket:", "pipe:", "anon_inode:", w.dir} {
			if strings.HasPrefix(l, bad) {
				t.Errorf("init fd %s → %s leaked from the daemon", fd.Name(), l)
			}
		}
	}
	root := filepath.Join("/proc", itoa(pid), "root")
	for file, want := range map[string]string{"etc/fixture": "from squashfs\n", "etc/pv-config": "from _config\n"} {
		if got, err := os.ReadFile(filepath.Join(root, file)); string(got) != want {
			t.Errorf("read %s in container = %q, %v, want %q", file, got, err, want)
		}
	}
	cg, _ := os.ReadFile(filepath.Join("/proc", itoa(pid), "cgroup"))
	t.Logf("/proc/%d/cgroup:\n%s", pid, cg)
	if !strings.Contains(string(cg), "/lxc/app") {
		t.Errorf("/proc/%d/cgroup = %q, want a /lxc/app path", pid, cg)
	}
	// Stock liblxc forces container=lxc on init itself; lxc.environment
	// still reaches attached processes and hooks.
	env, _ := os.ReadFile(filepath.Join("/proc", itoa(pid), "environ"))
	t.Logf("init environment: %q", env)
	if _, err := os.Stat(filepath.Join(root, "pantavisor", "logs")); err != nil {
		t.Errorf("role mount /pantavisor/logs: %v", err)
	}

	// Run a command inside (what pventer does).
	out := filepath.Join(t.TempDir(), "out")
	f, _ := os.Create(out)
	status, err := Attach(w.spec.LXCPath, "app", []string{"/bin/sh", "-c", "cat /etc/pv-config; hostname; echo $container"}, []string{"PATH=/bin:/sbin"}, os.Stdin, f, f)
	f.Close()
	got, _ := os.ReadFile(out)
	if err != nil || status != 0 || string(got) != "from _config\napp\npv-app\n" {
		t.Errorf("Attach(cat) = %d, %v, output %q, want 0 and config, hostname, container type", status, err, got)
	}
	status, err = Attach(w.spec.LXCPath, "app", []string{"/bin/sh", "-c", "exit 3"}, nil, os.Stdin, os.Stdout, os.Stderr)
	if err != nil || status != 3 {
		t.Errorf("Attach(exit 3) = %d, %v, want 3", status, err)
	}

	if after, _ := os.ReadFile("/proc/self/cgroup"); string(after) != string(self) {
		t.Errorf("own cgroup after Start and Attach = %q, want unchanged %q", after, self)
	}
	select {
	case l := <-lines:
		if !strings.Contains(l, "init started") {
			t.Errorf("console line = %q, want the init banner", l)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no console output within 5s")
	}
	start := time.Now()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("Stop() error = %v", err)
	}
	t.Logf("stop took %v", time.Since(start))
	select {
	case <-c.Done():
	default:
		t.Errorf("Done() not closed after Stop")
	}
	if err := c.Stop(ctx); err != nil {
		t.Errorf("second Stop() error = %v", err)
	}
	w.finish(t)
}

func TestContainerExitDetected(t *testing.T) {
	needLXC(t)
	conf := rootfs.LXCConf(rootfs.Conf{Name: "short", Init: "/bin/sleep 1"})
	w := newWorld(t, "short", conf)
	c, err := Start(context.Background(), testLog(t), w.spec)
	if err != nil {
		t.Fatalf("Start() error = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Errorf("Wait() error = %v, want init exit detected", err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Errorf("Stop() after exit error = %v", err)
	}
	w.finish(t)
}

func TestStartBadInput(t *testing.T) {
	needLXC(t)
	tests := []struct {
		name, conf string
		edit       func(*Spec)
		want       string
	}{
		{"missing config", "", func(s *Spec) { s.ConfigFile += ".missing" }, "no such file"},
		{"broken line", "lxc.tty.max 4\n", nil, "line 1"},
		{"unknown key", "lxc.rootfs.path = dir:/x\nlxc.no.such.key = 1\n", nil, `unsupported key "lxc.no.such.key"`},
		{"no rootfs", "lxc.tty.max = 4\n", nil, "lxc.rootfs.path: missing"},
		{"missing rootfs", rootfs.LXCConf(rootfs.Conf{Name: "bad", RootVolume: "nothere.squashfs"}), nil, "lxc log"},
		{"bad extra", "", func(s *Spec) { s.Extra = []string{"nonsense"} }, "extra config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, "bad", tc.conf)
			if tc.edit != nil {
				tc.edit(&w.spec)
			}
			c, err := Start(context.Background(), testLog(t), w.spec)
			if err == nil {
				c.Stop(context.Background())
				t.Fatalf("Start() succeeded, want error")
			}
			if !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start() error = %v, want ErrStart containing %q", err, tc.want)
			}
			w.finish(t)
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// A container left running by a daemon that died (kill -9) is stopped when
// the next daemon starts it again, instead of failing every boot.
func TestStartStopsLeftover(t *testing.T) {
	needLXC(t)
	conf := rootfs.LXCConf(rootfs.Conf{Name: "leftover"})
	w := newWorld(t, "leftover", conf)
	old := startReady(t, w)
	oldPid := old.Pid()
	// the old daemon is gone: nobody stops old
	c := startReady(t, w)
	if c.Pid() == oldPid || c.Pid() <= 0 {
		t.Errorf("Pid() after restart = %d, old %d: want a new init", c.Pid(), oldPid)
	}
	if err := syscall.Kill(oldPid, 0); err == nil {
		t.Errorf("old init %d still alive", oldPid)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Errorf("Stop() error = %v", err)
	}
	w.finish(t)
}

// A daemon and LXC monitors that died uncleanly leave empty cgroups of the
// container in every hierarchy; liblxc then refuses to create the
// container's cgroup ("Numerical result out of range") on every later
// start. Start removes the empty leftovers first (issue 11, defect 9).
func TestStartRemovesStaleCgroups(t *testing.T) {
	needLXC(t)
	name := "stale-" + strconv.Itoa(os.Getpid())
	w := newWorld(t, name, rootfs.LXCConf(rootfs.Conf{Name: name}))
	roots, err := cgroupRoots()
	if err != nil || len(roots) == 0 {
		t.Fatalf("cgroupRoots() = %q, %v", roots, err)
	}
	var made []string
	for _, r := range roots {
		for _, b := range ownCgroups() {
			for _, d := range []string{PayloadCgroup(name), MonitorCgroup(name), PayloadCgroup(name) + "/ns"} {
				dir := filepath.Join(r, b, d)
				if err := os.MkdirAll(dir, 0o755); err == nil {
					made = append(made, dir)
				}
			}
		}
	}
	if len(made) == 0 {
		t.Fatalf("could not create any stale cgroup in %q", roots)
	}
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			unix.Rmdir(made[i])
		}
	})
	c := startReady(t, w)
	if err := c.Stop(context.Background()); err != nil {
		t.Errorf("Stop() error = %v", err)
	}
	w.finish(t)
}

// removeStaleCgroups leaves a cgroup tree with a live process alone and
// removes it once the process is gone.
func TestRemoveStaleCgroupsKeepsBusy(t *testing.T) {
	needLXC(t)
	name := "busy-" + strconv.Itoa(os.Getpid())
	roots, _ := cgroupRoots()
	if len(roots) == 0 {
		t.Fatal("no cgroup hierarchy mounted")
	}
	dir := filepath.Join(roots[0], PayloadCgroup(name))
	child := filepath.Join(dir, "child")
	must(t, os.MkdirAll(child, 0o755))
	t.Cleanup(func() { unix.Rmdir(child); unix.Rmdir(dir); unix.Rmdir(filepath.Dir(dir)) })
	cmd := exec.Command("/bin/sleep", "3600")
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	must(t, os.WriteFile(filepath.Join(child, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644))

	removeStaleCgroups(name)
	if _, err := os.Stat(child); err != nil {
		t.Fatalf("busy cgroup removed: %v", err)
	}
	// Move the process out before it ends, so the tree is stale now.
	must(t, os.WriteFile(filepath.Join(roots[0], "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644))
	removeStaleCgroups(name)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale cgroup %s after removeStaleCgroups: %v, want gone", dir, err)
	}
}
