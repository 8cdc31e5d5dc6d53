package pantavisor

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/volume"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

var (
	imgOnce sync.Once
	imgPath string
	imgErr  error
)

// testImage returns a busybox rootfs with the pvhelper HTTP client.
func testImage(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "skipping: running containers needs root")
	}
	if err := rootfs.Available(); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	if err := lxc.Available(); err != nil {
		testenv.Skipf(t, "skipping: %v", err)
	}
	imgOnce.Do(func() {
		var helper []byte
		if helper, imgErr = rootfs.Helper(""); imgErr != nil {
			return
		}
		imgPath, imgErr = rootfs.Build(rootfs.Options{Files: []rootfs.File{{Path: "/bin/pvhelper", Mode: 0o755, Data: helper}}})
	})
	if imgErr != nil {
		t.Fatal(imgErr)
	}
	return imgPath
}

// plat is one platform of a test revision.
type plat struct {
	name string
	// runName is run.json's name ("" = name).
	runName string
	run     string // extra run.json members (`"group":"app"`)
	conf    string // lxc.container.conf ("" = rootfs.LXCConf)
	root    []byte // root.squashfs ("" = the test image)
}

// ctEnv is a test environment for real containers.
type ctEnv struct {
	dir, storage, volumes, configs string
	names                          []string // every platform written
}

func newCtEnv(t testing.TB) *ctEnv {
	dir := t.TempDir()
	e := &ctEnv{dir: dir, storage: filepath.Join(dir, "storage"), volumes: filepath.Join(dir, "volumes"),
		configs: filepath.Join(dir, "configs")}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(e.storage, "logs", "*", "*", "lxc", "lxc.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b)
			}
		}
		var leaks []string
		for i := 0; i < 250; i++ {
			if leaks, _ = volume.OwnLeaks(dir); len(leaks) == 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("Leaks() = %q, want none", leaks)
	})
	t.Cleanup(func() {
		// Runs after the daemon stopped (its cleanup was registered later).
		for _, n := range e.names {
			for _, pat := range []string{"/sys/fs/cgroup/*/lxc/" + n, "/sys/fs/cgroup/lxc/" + n, "/sys/fs/cgroup/*/lxc.monitor/" + n} {
				if m, _ := filepath.Glob(pat); len(m) > 0 {
					t.Errorf("cgroup left behind: %q", m)
				}
			}
		}
	})
	return e
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeRev materialises revision rev with plats and extra root keys
// (`"groups.json":[…]`) in the trail, with matching objects.
func (e *ctEnv) writeRev(t testing.TB, rev string, plats []plat, extra string, files map[string]string) {
	t.Helper()
	img, err := os.ReadFile(testImage(t))
	if err != nil {
		t.Fatal(err)
	}
	trail := filepath.Join(e.storage, "trails", rev)
	var keys []string
	put := func(key string, data []byte) {
		p := filepath.Join(trail, key)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, data, 0o644))
		obj := filepath.Join(e.storage, "objects", shaOf(data))
		must(t, os.MkdirAll(filepath.Dir(obj), 0o755))
		must(t, os.WriteFile(obj, data, 0o644))
		keys = append(keys, fmt.Sprintf("%q:%q", key, shaOf(data)))
	}
	for _, p := range plats {
		e.names = append(e.names, cmp.Or(p.runName, p.name))
		root := p.root
		if root == nil {
			root = img
		}
		conf := p.conf
		if conf == "" {
			conf = rootfs.LXCConf(rootfs.Conf{Name: p.name, VolumesDir: e.volumes})
		}
		put(p.name+"/root.squashfs", root)
		put(p.name+"/lxc.container.conf", []byte(conf))
		run := fmt.Sprintf(`{"#spec":"service-manifest-run@1","name":%q,"type":"lxc","config":"lxc.container.conf","root-volume":"root.squashfs","volumes":[]`, cmp.Or(p.runName, p.name))
		if !strings.Contains(p.run, `"storage"`) {
			run += `,"storage":{"lxc-overlay":{"persistence":"boot"}}`
		}
		if p.run != "" {
			run += "," + p.run
		}
		keys = append(keys, fmt.Sprintf("%q:%s}", p.name+"/run.json", run))
	}
	for k, v := range files {
		put(k, []byte(v))
	}
	js := `{"#spec":"pantavisor-service-system@1",` + strings.Join(keys, ",")
	if extra != "" {
		js += "," + extra
	}
	js += "}"
	must(t, os.MkdirAll(filepath.Join(trail, ".pvr"), 0o755))
	must(t, os.WriteFile(filepath.Join(trail, ".pvr", "json"), []byte(js), 0o644))
}

// start runs the daemon on rev with real containers.
func (e *ctEnv) start(t testing.TB, rev string, mod func(*Options)) *instance {
	t.Helper()
	return start(t, e.storage, func(o *Options) {
		o.Cmdline = "pv_rev=" + rev + " pv_appengine"
		o.Env = append(o.Env, "PV_DISK_VOLDIR="+e.volumes, "PV_SYSTEM_CONFDIR="+e.configs, "PV_LXC_LOG_LEVEL=1", "PV_LOG_LEVEL=4")
		o.NewPlatforms = NewPlatforms
		o.Log = slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
		if mod != nil {
			mod(o)
		}
	})
}

type ctInfo struct {
	Name, Group, Status string
	Goal                string `json:"status_goal"`
	RestartPolicy       string `json:"restart_policy"`
	Roles               []string
	UserStopped         string `json:"user_stopped"`
	AutoRecovery        *struct {
		Policy         string
		MaxRetries     int `json:"max_retries"`
		CurrentRetries int `json:"current_retries"`
	} `json:"auto_recovery"`
}

func (in *instance) containers(t testing.TB) map[string]ctInfo {
	t.Helper()
	code, b := in.call(t, "GET", "/containers", nil)
	if code != 200 {
		t.Fatalf("GET /containers = %d %s", code, b)
	}
	var l []ctInfo
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("GET /containers: %v: %s", err, b)
	}
	m := map[string]ctInfo{}
	for _, c := range l {
		m[c.Name] = c
	}
	return m
}

// waitFor polls GET /containers until cond holds.
func (in *instance) waitFor(t testing.TB, what string, cond func(map[string]ctInfo) bool) map[string]ctInfo {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := in.containers(t)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached; containers %+v", what, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusIs(want map[string]string) func(map[string]ctInfo) bool {
	return func(m map[string]ctInfo) bool {
		for n, s := range want {
			if m[n].Status != s {
				return false
			}
		}
		return true
	}
}

// waitInit waits until the init of each container announced itself on its
// console (so it handles the halt signal), read back through the log
// server's lxc/console.log.
func (e *ctEnv) waitInit(t testing.TB, rev string, names ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range names {
		for {
			b, _ := os.ReadFile(filepath.Join(e.storage, "logs", rev, n, "lxc", "console.log"))
			if strings.Contains(string(b), "init started") {
				break
			}
			if time.Now().After(deadline) {
				var files []string
				filepath.Walk(e.storage, func(p string, fi os.FileInfo, err error) error {
					if err == nil && strings.Contains(p, "/logs/") {
						files = append(files, p)
					}
					return nil
				})
				t.Fatalf("%s: no init line in lxc/console.log: %q; log files %q", n, b, files)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// exec runs argv in container name and returns its trimmed output.
func (in *instance) exec(t testing.TB, name string, argv ...string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := lxc.Attach(filepath.Join(in.run, "lxc"), name, argv, []string{"PATH=/bin:/sbin"}, os.Stdin, f, f); err != nil {
		t.Fatalf("attach %s: %v", name, err)
	}
	out, _ := os.ReadFile(f.Name())
	return strings.TrimSpace(string(out))
}

// inside runs pvhelper http in container name and returns "code\nbody".
func (in *instance) inside(t testing.TB, name, method, path, body string) string {
	t.Helper()
	argv := []string{"/bin/pvhelper", "http", "/pantavisor/pv-ctrl", method, path}
	if body != "" {
		argv = append(argv, body)
	}
	return in.exec(t, name, argv...)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const testGroups = `"groups.json":[
	{"name":"g1","status_goal":"STARTED","restart_policy":"system","timeout":20},
	{"name":"g2","status_goal":"READY","restart_policy":"container","timeout":20},
	{"name":"g3","status_goal":"STARTED","restart_policy":"container","timeout":20}]`

// TestContainersLifecycle runs five containers in three ordered groups:
// g3 waits BLOCKED for g2's READY signal; the API stops, starts and
// restarts containers, refuses system ones and unprivileged callers; the
// config overlay is visible inside; everything is cleaned up on exit.
func TestContainersLifecycle(t *testing.T) {
	e := newCtEnv(t)
	e.writeRev(t, "0", []plat{
		{name: "lc-sys", run: `"group":"g1"`},
		{name: "lc-mgmt", run: `"group":"g2","roles":["mgmt"]`},
		{name: "lc-a1", run: `"group":"g3"`},
		{name: "lc-a2", run: `"group":"g3","exports":["/x"]`},
		{name: "lc-nob", run: `"group":"g3","roles":["nobody"]`},
	}, testGroups, map[string]string{"_config/lc-a1/etc/motd": "overlay says hi\n"})
	clk := newEngineClock()
	in := e.start(t, "0", withClock(clk))

	in.waitFor(t, "g2 started", statusIs(map[string]string{"lc-sys": "STARTED", "lc-mgmt": "STARTED"}))
	in.settle(t, clk)
	m := in.containers(t)
	for _, n := range []string{"lc-a1", "lc-a2", "lc-nob"} {
		if m[n].Status != "BLOCKED" {
			t.Errorf("%s before READY = %s, want BLOCKED", n, m[n].Status)
		}
	}
	if got := in.inside(t, "lc-mgmt", "POST", "/signal", `{"type":"ready","payload":""}`); !strings.HasPrefix(got, "200") {
		t.Errorf("POST /signal from lc-mgmt = %q, want 200", got)
	}
	in.waitFor(t, "all started", statusIs(map[string]string{"lc-mgmt": "READY", "lc-a1": "STARTED", "lc-a2": "STARTED", "lc-nob": "STARTED"}))

	// Groups.
	code, b := in.call(t, "GET", "/groups", nil)
	want := `[{"name":"g1","status_goal":"STARTED","restart_policy":"system","status":"READY"},` +
		`{"name":"g2","status_goal":"READY","restart_policy":"container","status":"READY"},` +
		`{"name":"g3","status_goal":"STARTED","restart_policy":"container","status":"READY"}]`
	if code != 200 || string(b) != want {
		t.Errorf("GET /groups = %d %s, want 200 %s", code, b, want)
	}

	// Privileges inside containers.
	if got := in.inside(t, "lc-mgmt", "GET", "/containers", ""); !strings.HasPrefix(got, "200") || !strings.Contains(got, `"lc-a1"`) {
		t.Errorf("GET /containers from mgmt = %q, want 200 and the list", got)
	}
	if got := in.inside(t, "lc-nob", "GET", "/containers", ""); !strings.HasPrefix(got, "403") {
		t.Errorf("GET /containers from nobody = %q, want 403", got)
	}
	if got := in.inside(t, "lc-nob", "POST", "/signal", `{"type":"ready","payload":""}`); !strings.HasPrefix(got, "500") || !strings.Contains(got, "Signal not expected") {
		t.Errorf("POST /signal from nobody = %q, want 500 Signal not expected", got)
	}
	if got := in.inside(t, "lc-nob", "POST", "/signal", `{"type":"alive","payload":""}`); !strings.HasPrefix(got, "200") {
		t.Errorf("POST /signal alive from nobody = %q, want 200 (any platform may send its heartbeat)", got)
	}
	if got := in.inside(t, "lc-a1", "GET", "/drivers", ""); !strings.HasPrefix(got, "403") {
		t.Errorf("GET /drivers from a platform without roles = %q, want 403", got)
	}

	// Exports.
	in.exec(t, "lc-a2", "/bin/sh", "-c", "echo exported > /x-file")
	if b, err := os.ReadFile(filepath.Join(in.run, "exports", "lc-a2", "x-file")); err != nil || string(b) != "exported\n" {
		t.Errorf("exported file on the host = %q, %v", b, err)
	}

	// Default file loggers follow /var/log/messages into the log server.
	in.exec(t, "lc-a1", "/bin/sh", "-c", "mkdir -p /var/log && echo hello-messages >> /var/log/messages")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(e.storage, "logs", "0", "lc-a1", "var", "log", "messages"))
		if strings.Contains(string(b), "hello-messages") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs/0/lc-a1/var/log/messages = %q, want the container's line", b)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Config overlay.
	if got := in.exec(t, "lc-a1", "/bin/cat", "/etc/motd"); got != "overlay says hi" {
		t.Errorf("/etc/motd in lc-a1 = %q, want the _config overlay", got)
	}

	// Stop, start, restart; system policy refused.
	for _, tt := range []struct {
		name, action string
		code         int
	}{
		{"lc-sys", "stop", 403},
		{"lc-ghost", "stop", 404},
		{"lc-a1", "jump", 400},
		{"lc-a1", "stop", 200},
	} {
		code, b := in.call(t, "PUT", "/containers/"+tt.name, strings.NewReader(`{"action":"`+tt.action+`"}`))
		if code != tt.code {
			t.Errorf("PUT /containers/%s %s = %d %s, want %d", tt.name, tt.action, code, b, tt.code)
		}
	}
	m = in.waitFor(t, "a1 stopped", statusIs(map[string]string{"lc-a1": "STOPPED"}))
	if m["lc-a1"].UserStopped != "true" {
		t.Errorf("lc-a1 user_stopped = %q, want true", m["lc-a1"].UserStopped)
	}
	if m["lc-sys"].UserStopped != "" {
		t.Errorf("lc-sys (system) has user_stopped %q, want none", m["lc-sys"].UserStopped)
	}
	if code, b := in.call(t, "PUT", "/containers/lc-a1", strings.NewReader(`{"action":"start"}`)); code != 200 {
		t.Errorf("start lc-a1 = %d %s", code, b)
	}
	in.waitFor(t, "a1 started again", statusIs(map[string]string{"lc-a1": "STARTED"}))
	if code, b := in.call(t, "PUT", "/containers/lc-a2", strings.NewReader(`{"action":"restart"}`)); code != 200 {
		t.Errorf("restart lc-a2 = %d %s", code, b)
	}
	in.waitFor(t, "a2 restarted", statusIs(map[string]string{"lc-a2": "STARTED"}))
	e.waitInit(t, "0", "lc-sys", "lc-mgmt", "lc-a1", "lc-a2", "lc-nob")
	if in.d.State() != StateWait {
		t.Errorf("daemon state = %s, want WAIT", in.d.State())
	}
	in.stop()
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), filepath.Join(in.run, "exports")) {
		t.Errorf("export still mounted after shutdown")
	}
	// The cleanup checks no loops, mounts or cgroups are left.
}

// engineClock is a fake clock for the engine whose FSM ticks come fast in
// real time, so advancing it is seen within milliseconds. Its waiters
// can be awaited: each WAIT round of the FSM ends in one After call, and
// awaitRounds waits for them.
type engineClock struct {
	mu     sync.Mutex
	now    time.Time
	rounds int           // After calls so far
	tick   chan struct{} // closed (and replaced) at every After call
}

func newEngineClock() *engineClock {
	return &engineClock{now: time.Unix(1000, 0), tick: make(chan struct{})}
}

func (c *engineClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *engineClock) After(time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.rounds++
	close(c.tick)
	c.tick = make(chan struct{})
	c.mu.Unlock()
	return time.After(5 * time.Millisecond)
}

func (c *engineClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// awaitRounds waits until the FSM waits on the clock n more times. With
// n = 2, a whole WAIT round (Step, then After) began after the call.
func (c *engineClock) awaitRounds(t testing.TB, n int) {
	t.Helper()
	c.mu.Lock()
	want := c.rounds + n
	c.mu.Unlock()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		got, tick := c.rounds, c.tick
		c.mu.Unlock()
		if got >= want {
			return
		}
		select {
		case <-tick:
		case <-deadline:
			t.Fatalf("FSM made %d of %d rounds in 20s", got-want+n, n)
		}
	}
}

// settle returns once the FSM has run a whole WAIT round on the clock's
// current time and every container action it started has ended: what
// GET /containers shows then is what that time leads to.
func (in *instance) settle(t testing.TB, clk *engineClock) {
	t.Helper()
	clk.awaitRounds(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := in.d.platforms.(*Containers).awaitIdle(ctx, nil); err != nil {
		t.Fatalf("container actions still running: %v", err)
	}
}

func withClock(clk *engineClock) func(*Options) {
	return func(o *Options) { o.Clock = clk }
}

// TestGoalsAndTimeout: a MOUNTED goal stops after mounting, a READY goal
// that never comes times out (on the fake clock) and unblocks the next
// group; outside an update the timeout is not fatal.
func TestGoalsAndTimeout(t *testing.T) {
	e := newCtEnv(t)
	e.writeRev(t, "0", []plat{
		{name: "gt-d", run: `"group":"data"`},
		{name: "gt-r", run: `"group":"wait"`},
		{name: "gt-a", run: `"group":"app"`},
	}, `"groups.json":[{"name":"data","status_goal":"MOUNTED","timeout":5},
		{"name":"wait","status_goal":"READY","timeout":3},{"name":"app","status_goal":"STARTED"}]`, nil)
	clk := newEngineClock()
	in := e.start(t, "0", withClock(clk))
	in.waitFor(t, "ready goal pending", statusIs(map[string]string{"gt-d": "MOUNTED", "gt-r": "STARTED", "gt-a": "BLOCKED"}))
	clk.advance(2 * time.Second)
	in.settle(t, clk)
	if m := in.containers(t); m["gt-a"].Status != "BLOCKED" {
		t.Errorf("gt-a before the goal timeout = %s, want BLOCKED", m["gt-a"].Status)
	}
	clk.advance(2 * time.Second)
	in.waitFor(t, "timeout unblocks app", statusIs(map[string]string{"gt-r": "STARTED", "gt-a": "STARTED"}))
	e.waitInit(t, "0", "gt-r", "gt-a")
	if _, err := os.Stat(filepath.Join(e.volumes, "gt-d", "root.squashfs", "sbin", "init")); err != nil {
		t.Errorf("MOUNTED platform volume: %v", err)
	}
	if in.d.State() != StateWait {
		t.Errorf("state after a goal timeout = %s, want WAIT", in.d.State())
	}
}

// TestCrashLoop: a container whose init exits at once is recovered with
// retry_delay × backoff_factor^(n−1) on the fake clock; exhausting
// max_retries reboots, leaves it stopped or waits, per backoff_policy.
func TestCrashLoop(t *testing.T) {
	testImage(t)
	for _, tt := range []struct {
		policy string
	}{{"reboot"}, {"never"}, {"10s"}} {
		t.Run(tt.policy, func(t *testing.T) {
			e := newCtEnv(t)
			name := "cl-" + strings.TrimSuffix(tt.policy, "s")
			conf := rootfs.LXCConf(rootfs.Conf{Name: name, VolumesDir: e.volumes, Init: "/bin/false"})
			e.writeRev(t, "0", []plat{{name: name, conf: conf, run: `"group":"app","auto_recovery":{"policy":"always",` +
				`"max_retries":2,"retry_delay":1,"backoff_factor":3,"backoff_policy":"` + tt.policy + `"}`}},
				`"groups.json":[{"name":"app"}]`, nil)
			clk := newEngineClock()
			in := e.start(t, "0", withClock(clk))
			retries := func(n int, status string) func(map[string]ctInfo) bool {
				return func(m map[string]ctInfo) bool {
					c := m[name]
					return c.Status == status && c.AutoRecovery != nil && c.AutoRecovery.CurrentRetries == n
				}
			}
			// Crash 1: 1 s delay.
			in.waitFor(t, "first crash", retries(1, "RECOVERING"))
			clk.advance(900 * time.Millisecond)
			in.settle(t, clk)
			if !retries(1, "RECOVERING")(in.containers(t)) {
				t.Fatalf("before retry_delay: %+v, want RECOVERING 1", in.containers(t)[name])
			}
			// Crash 2: 3 s delay.
			clk.advance(200 * time.Millisecond)
			in.waitFor(t, "second crash", retries(2, "RECOVERING"))
			clk.advance(2900 * time.Millisecond)
			in.settle(t, clk)
			if !retries(2, "RECOVERING")(in.containers(t)) {
				t.Fatalf("before retry_delay×factor: %+v, want RECOVERING 2", in.containers(t)[name])
			}
			clk.advance(200 * time.Millisecond)
			// Crash 3 exhausts max_retries.
			switch tt.policy {
			case "reboot":
				if got := in.wait(t); got != ExitReboot {
					t.Errorf("exit after exhausted retries = %d, want reboot", got)
				}
			case "never":
				in.waitFor(t, "left stopped", retries(2, "STOPPED"))
				clk.advance(time.Hour)
				in.settle(t, clk)
				if !retries(2, "STOPPED")(in.containers(t)) || in.d.State() != StateWait {
					t.Errorf("never: %+v in %s, want STOPPED in WAIT", in.containers(t)[name], in.d.State())
				}
			case "10s":
				in.waitFor(t, "waiting", retries(2, "STOPPED"))
				clk.advance(9 * time.Second)
				in.settle(t, clk)
				if !retries(2, "STOPPED")(in.containers(t)) {
					t.Errorf("before backoff wait: %+v, want STOPPED 2", in.containers(t)[name])
				}
				clk.advance(2 * time.Second)
				in.waitFor(t, "counter reset and restarted", retries(1, "RECOVERING"))
			}
		})
	}
}

// TestPersistence: a permanent storage volume survives a daemon restart,
// a boot one does not.
func TestPersistence(t *testing.T) {
	e := newCtEnv(t)
	conf := rootfs.LXCConf(rootfs.Conf{Name: "ps-app", VolumesDir: e.volumes, Mounts: []string{
		filepath.Join(e.volumes, "ps-app", "perm") + " perm none bind,create=dir 0 0",
		filepath.Join(e.volumes, "ps-app", "boot") + " boot none bind,create=dir 0 0",
	}})
	e.writeRev(t, "0", []plat{{name: "ps-app", conf: conf, run: `"storage":{"lxc-overlay":{"persistence":"boot"},` +
		`"perm":{"persistence":"permanent"},"boot":{"persistence":"boot"}}`}}, "", nil)
	in := e.start(t, "0", nil)
	in.waitFor(t, "started", statusIs(map[string]string{"ps-app": "STARTED"}))
	in.exec(t, "ps-app", "/bin/sh", "-c", "echo kept > /perm/f; echo lost > /boot/f")
	e.waitInit(t, "0", "ps-app")
	in.stop()
	in = e.start(t, "0", nil)
	in.waitFor(t, "started again", statusIs(map[string]string{"ps-app": "STARTED"}))
	e.waitInit(t, "0", "ps-app")
	if got := in.exec(t, "ps-app", "/bin/sh", "-c", "cat /perm/f; cat /boot/f 2>/dev/null || echo gone"); got != "kept\ngone" {
		t.Errorf("after restart perm, boot = %q, want kept and gone", got)
	}
}

// syncBuf is a log sink shared by the daemon's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// treeSums maps every regular file under dir to its sha256.
func treeSums(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[p] = shaOf(b)
		}
		return nil
	})
	return out
}

// TestBadRevisions: broken revisions fail with a clear reason in the log;
// the daemon reacts (reboot) instead of crashing and storage is untouched.
func TestBadRevisions(t *testing.T) {
	testImage(t)
	for _, tt := range []struct {
		name  string
		plats func(e *ctEnv) []plat
		extra string
		edit  func(e *ctEnv)
		want  string
	}{
		{"missing object", func(e *ctEnv) []plat { return []plat{{name: "bad-mo"}} }, "",
			func(e *ctEnv) { os.Remove(filepath.Join(e.storage, "trails", "0", "bad-mo", "root.squashfs")) }, "bad-mo failed"},
		{"broken lxc conf", func(e *ctEnv) []plat {
			return []plat{{name: "bad-conf", conf: "lxc.rootfs.path = \nthis is not lxc\n"}}
		}, "", nil, "bad-conf failed"},
		{"not a squashfs", func(e *ctEnv) []plat { return []plat{{name: "bad-sq", root: []byte("not a squashfs at all")}} }, "", nil, "bad-sq failed"},
		{"duplicate name", func(e *ctEnv) []plat {
			return []plat{{name: "bad-dup"}, {name: "bad-dup2", runName: "bad-dup"}}
		}, "", nil, "duplicate platform name"},
		{"unknown group", func(e *ctEnv) []plat { return []plat{{name: "bad-grp", run: `"group":"nope"`}} }, "", nil, "unknown group"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newCtEnv(t)
			e.writeRev(t, "0", tt.plats(e), tt.extra, nil)
			if tt.edit != nil {
				tt.edit(e)
			}
			before := treeSums(t, filepath.Join(e.storage, "trails"))
			objs := treeSums(t, filepath.Join(e.storage, "objects"))
			var logs syncBuf
			d, err := New(Options{Cmdline: "pv_rev=0 pv_appengine", NewPlatforms: NewPlatforms,
				Env: []string{"PV_STORAGE_MNTPOINT=" + e.storage, "PV_SYSTEM_RUNDIR=" + filepath.Join(e.dir, "run"),
					"PV_DISK_VOLDIR=" + e.volumes, "PV_SYSTEM_CONFDIR=" + e.configs, "PV_CONTROL_REMOTE=0"},
				Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			exit, err := d.Run(ctx)
			if err != nil || exit != ExitReboot {
				t.Errorf("Run = %d, %v, want reboot", exit, err)
			}
			if !strings.Contains(logs.String(), tt.want) {
				t.Errorf("log does not name the problem %q:\n%s", tt.want, logs.String())
			}
			after := treeSums(t, filepath.Join(e.storage, "trails"))
			for p, s := range before {
				if strings.Contains(p, "/.pv/") || strings.Contains(p, "/.pvr/") {
					continue
				}
				if after[p] != s {
					t.Errorf("%s changed", p)
				}
			}
			for p, s := range objs {
				b, _ := os.ReadFile(p)
				if shaOf(b) != s {
					t.Errorf("object %s changed", p)
				}
			}
		})
	}
}

func newTextLog(w *syncBuf) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// runUpdateNoReboot (TestUpdateNoReboot in update_test.go, with the real
// updater): LOCAL_RUN of a revision that changes only restart_policy
// container platforms transitions without a reboot: the new revision's
// containers run, its progress ends UPDATED. With crash, the added
// container dies at once without auto-recovery: the update ends ERROR and
// the daemon rolls back (reboot exit). With badGroup, the new revision
// names an unknown group: the update is refused with the reason in its
// progress and the old revision keeps running.
func runUpdateNoReboot(t testing.TB, newUpdater func(Env) (Updater, error), crash, badGroup bool) {
	e := newCtEnv(t)
	groups := `"groups.json":[{"name":"app","restart_policy":"container","timeout":10}]`
	keep := plat{name: "up-keep", run: `"group":"app"`}
	e.writeRev(t, "0", []plat{{name: "up-a", run: `"group":"app"`}, keep}, groups, nil)
	// Build locals/1 the same way, then keep only its state JSON and objects.
	b := plat{name: "up-b", run: `"group":"app"`}
	if crash {
		b = plat{name: "up-crash", run: `"group":"app"`,
			conf: rootfs.LXCConf(rootfs.Conf{Name: "up-crash", VolumesDir: e.volumes, Init: "/bin/false"})}
	}
	if badGroup {
		b.run = `"group":"nope"`
	}
	e.writeRev(t, "locals/1", []plat{{name: "up-a", run: `"group":"app"`}, b, keep},
		groups, map[string]string{"_config/up-a/etc/motd": "rev 1\n"})
	trail := filepath.Join(e.storage, "trails", "locals", "1")
	js, err := os.ReadFile(filepath.Join(trail, ".pvr", "json"))
	must(t, err)
	must(t, os.RemoveAll(filepath.Join(e.storage, "trails", "locals")))

	var clk *engineClock
	if badGroup {
		clk = newEngineClock() // the refused update needs no time to pass
	}
	in := e.start(t, "0", func(o *Options) {
		o.NewUpdater = newUpdater
		o.Env = append(o.Env, "PV_UPDATER_COMMIT_DELAY=1", "PV_BOOTLOADER_TYPE=uboot")
		if clk != nil {
			o.Clock = clk
		}
	})
	in.waitFor(t, "rev 0 started", statusIs(map[string]string{"up-a": "STARTED", "up-keep": "STARTED"}))
	e.waitInit(t, "0", "up-a", "up-keep")
	for _, n := range []string{"up-a", "up-keep"} {
		in.exec(t, n, "/bin/sh", "-c", "echo here > /tmp/marker")
	}
	code, body := in.call(t, "PUT", "/steps/locals/1", strings.NewReader(string(js)))
	if badGroup {
		if code != 422 || !strings.Contains(string(body), "nope") {
			t.Errorf("PUT /steps/locals/1 with an unknown group = %d %s, want 422 naming it", code, body)
		}
		in.settle(t, clk)
		if m := in.containers(t); m["up-a"].Status != "STARTED" || in.d.State() != StateWait {
			t.Errorf("after a refused revision: up-a %s, daemon %s, want STARTED, WAIT", m["up-a"].Status, in.d.State())
		}
		return
	}
	if code != 200 {
		t.Fatalf("PUT /steps/locals/1 = %d %s", code, body)
	}
	if code, b := in.call(t, "POST", "/commands", strings.NewReader(`{"op":"LOCAL_RUN","payload":"locals/1"}`)); code != 200 {
		t.Fatalf("LOCAL_RUN = %d %s", code, b)
	}
	if crash {
		if got := in.wait(t); got != ExitReboot {
			t.Errorf("exit after a crash in the update = %d, want reboot (rollback)", got)
		}
		p, _ := os.ReadFile(filepath.Join(e.storage, "trails", "locals", "1", ".pv", "progress"))
		if !strings.Contains(string(p), `"ERROR"`) || !strings.Contains(string(p), "container") {
			t.Errorf("progress of locals/1 = %s, want ERROR naming the container failure", p)
		}
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for !strings.Contains(last, `"UPDATED"`) && !strings.Contains(last, `"DONE"`) {
		if time.Now().After(deadline) || strings.Contains(last, `"ERROR"`) || strings.Contains(last, `"WONTGO"`) {
			t.Fatalf("progress of locals/1 = %s, want UPDATED", last)
		}
		time.Sleep(50 * time.Millisecond)
		_, b := in.call(t, "GET", "/steps/locals/1/progress", nil)
		last = string(b)
	}
	in.waitFor(t, "rev 1 running", statusIs(map[string]string{"up-a": "STARTED", "up-b": "STARTED", "up-keep": "STARTED"}))
	// The unchanged container kept running (its tmpfs survived); the
	// changed one was restarted.
	if got := in.exec(t, "up-keep", "/bin/sh", "-c", "cat /tmp/marker 2>/dev/null || echo gone"); got != "here" {
		t.Errorf("up-keep /tmp/marker after the update = %q, want here (not restarted)", got)
	}
	if got := in.exec(t, "up-a", "/bin/sh", "-c", "cat /tmp/marker 2>/dev/null || echo gone"); got != "gone" {
		t.Errorf("up-a /tmp/marker after the update = %q, want gone (restarted)", got)
	}
	if got := in.exec(t, "up-a", "/bin/cat", "/etc/motd"); got != "rev 1" {
		t.Errorf("/etc/motd in up-a after the update = %q, want rev 1", got)
	}
	if in.d.Revision() != "locals/1" || in.d.State() != StateWait {
		t.Errorf("daemon after the update: rev %s state %s, want locals/1 WAIT", in.d.Revision(), in.d.State())
	}
	e.waitInit(t, "locals/1", "up-a", "up-b")
}

// TestStopStubborn: containers whose init ignores the halt signal are
// killed after one stop timeout, all at once, and nothing is left behind.
func TestStopStubborn(t *testing.T) {
	e := newCtEnv(t)
	var plats []plat
	for _, n := range []string{"st-a", "st-b", "st-c"} {
		plats = append(plats, plat{name: n, run: `"group":"app"`, conf: rootfs.LXCConf(rootfs.Conf{Name: n, VolumesDir: e.volumes, Init: "/bin/sleep 3600"})})
	}
	e.writeRev(t, "0", plats, `"groups.json":[{"name":"app"}]`, nil)
	in := e.start(t, "0", nil)
	in.waitFor(t, "started", statusIs(map[string]string{"st-a": "STARTED", "st-b": "STARTED", "st-c": "STARTED"}))
	start := time.Now()
	in.stop()
	t.Logf("stopped 3 stubborn containers in %v", time.Since(start))
}

// stubbornInit is a container init that ignores the halt signals (LXC's
// SIGPWR, SIGTERM) and says so on its console: a stop of it takes the
// whole stop timeout and ends in SIGKILL.
const stubbornInit = `trap 'echo "pv-fixture: halt ignored"' PWR TERM INT
echo "pv-fixture: init started as pid $$"
while :; do
	sleep 3600 &
	wait $!
done
`

// stubbornPlat is a platform running stubbornInit, its files for writeRev.
func stubbornPlat(e *ctEnv, name string) (plat, map[string]string) {
	conf := rootfs.LXCConf(rootfs.Conf{Name: name, VolumesDir: e.volumes, Init: "/bin/sh /etc/stubborn"})
	return plat{name: name, run: `"group":"app"`, conf: conf},
		map[string]string{"_config/" + name + "/etc/stubborn": stubbornInit}
}

// waitConsole waits until the console log of name in rev contains s.
func (e *ctEnv) waitConsole(t testing.TB, rev, name, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(e.storage, "logs", rev, name, "lxc", "console.log"))
		if strings.Contains(string(b), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q not on the console: %q", name, s, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStubbornStopKeepsAPI: while a container that ignores its halt
// signal is being stopped (the stop takes the whole stop timeout), GET
// /containers, GET /groups and POST /signal are answered at once: their
// answers arrive while the container is still STOPPING, not after the
// stop finished (issue 11: no blocking call under the manager's lock).
func TestStubbornStopKeepsAPI(t *testing.T) {
	e := newCtEnv(t)
	name := fmt.Sprintf("sk-%d", os.Getpid())
	p, files := stubbornPlat(e, name)
	e.writeRev(t, "0", []plat{p}, `"groups.json":[{"name":"app","restart_policy":"container"}]`, files)
	in := e.start(t, "0", nil)
	in.waitFor(t, "started", statusIs(map[string]string{name: "STARTED"}))
	e.waitInit(t, "0", name)

	stopped := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("PUT", "http://localhost/containers/"+name, strings.NewReader(`{"action":"stop"}`))
		resp, err := in.hc.Do(req)
		if err != nil {
			stopped <- -1
			return
		}
		resp.Body.Close()
		stopped <- resp.StatusCode
	}()
	// The halt signal reached init: the stop is under way, and lasts the
	// stop timeout (5 s) from here.
	e.waitConsole(t, "0", name, "halt ignored")
	if got := in.containers(t)[name].Status; got != "STOPPING" {
		t.Errorf("GET /containers during the stop: %s = %s, want STOPPING (answered before the stop ended)", name, got)
	}
	if code, b := in.call(t, "POST", "/signal", strings.NewReader(`{"type":"alive","payload":""}`)); code != 200 {
		t.Errorf("POST /signal during the stop = %d %s, want 200", code, b)
	}
	if code, b := in.call(t, "GET", "/groups", nil); code != 200 || !strings.Contains(string(b), `"app"`) {
		t.Errorf("GET /groups during the stop = %d %s", code, b)
	}
	if got := in.containers(t)[name].Status; got != "STOPPING" {
		t.Errorf("GET /containers after the signal: %s = %s, want STOPPING still", name, got)
	}
	select {
	case code := <-stopped:
		if code != 200 {
			t.Errorf("PUT stop = %d, want 200", code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("PUT stop not answered")
	}
	in.waitFor(t, "stopped", statusIs(map[string]string{name: "STOPPED"}))
}

// BenchmarkContainersDuringStubbornStop measures GET /containers while a
// container that ignores its halt signal is being stopped (stop timeout,
// then SIGKILL): it reports the p50, p99 and max latency of the requests
// made from the stop request until the container is STOPPED.
func BenchmarkContainersDuringStubbornStop(b *testing.B) {
	e := newCtEnv(b)
	name := fmt.Sprintf("sb-%d", os.Getpid())
	p, files := stubbornPlat(e, name)
	e.writeRev(b, "0", []plat{p}, `"groups.json":[{"name":"app","restart_policy":"container"}]`, files)
	in := e.start(b, "0", nil)
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		in.waitFor(b, "started", statusIs(map[string]string{name: "STARTED"}))
		e.waitInit(b, "0", name)
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequest("PUT", "http://localhost/containers/"+name, strings.NewReader(`{"action":"stop"}`))
			if resp, err := in.hc.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		for {
			t0 := time.Now()
			m := in.containers(b)
			lat = append(lat, time.Since(t0))
			if m[name].Status == "STOPPED" {
				break
			}
			time.Sleep(time.Millisecond)
		}
		<-done
		if code, body := in.call(b, "PUT", "/containers/"+name, strings.NewReader(`{"action":"start"}`)); code != 200 {
			b.Fatalf("start = %d %s", code, body)
		}
	}
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.Logf("GET /containers during a stubborn stop: %d requests, p50 %v p99 %v max %v", len(lat), pct(0.50), pct(0.99), lat[len(lat)-1])
}
