package pantavisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

const emptyState = `{"#spec":"pantavisor-service-system@1"}`

// instance is a daemon running in-process in appengine mode.
type instance struct {
	d       *Daemon
	storage string
	run     string
	hc      *http.Client
	done    chan struct{}
	exit    Exit
	err     error
	// stop cancels Run (SIGTERM) and waits for it to return.
	stop func()
}

type testLog struct{ t testing.TB }

func (w testLog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// newStorage makes a storage dir with an empty factory revision 0.
func newStorage(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "trails", "0", ".pvr"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "trails", "0", ".pvr", "json"), []byte(emptyState), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func start(t testing.TB, storage string, mod func(*Options)) *instance {
	t.Helper()
	run := filepath.Join(t.TempDir(), "run")
	o := Options{
		ConfigFile: "",
		Cmdline:    "pv_rev=0 pv_appengine",
		Env:        []string{"PV_STORAGE_MNTPOINT=" + storage, "PV_SYSTEM_RUNDIR=" + run, "PV_CONTROL_REMOTE=0"},
		Log:        slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		BuildInfo:  "test build\n",
	}
	if mod != nil {
		mod(&o)
	}
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{d: d, storage: storage, run: run, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		in.exit, in.err = d.Run(ctx)
		close(in.done)
	}()
	in.stop = func() {
		cancel()
		<-in.done
	}
	t.Cleanup(in.stop)
	select {
	case <-d.Ready():
	case <-in.done:
		t.Fatalf("daemon exited during start: %v", in.err)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon not ready after 10s")
	}
	sock := filepath.Join(run, "pv-ctrl")
	in.hc = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", sock)
	}}}
	return in
}

func (in *instance) call(t testing.TB, method, path string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://localhost"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := in.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (in *instance) wait(t testing.TB) Exit {
	t.Helper()
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not exit")
	}
	if in.err != nil {
		t.Fatalf("Run: %v", in.err)
	}
	return in.exit
}

func TestEndpoints(t *testing.T) {
	in := start(t, newStorage(t), nil)
	sum := sha256.Sum256([]byte("hello object"))
	sha := hex.EncodeToString(sum[:])
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // substring of the answer
	}{
		{"buildinfo", "GET", "/buildinfo", "", 200, "test build"},
		{"config", "GET", "/config", "", 200, `"system.init.mode":0`},
		{"config2", "GET", "/config2", "", 200, `{"key":"PV_CONTROL_REMOTE","value":"0","modified":"env"}`},
		{"devmeta", "GET", "/device-meta", "", 200, `"pantavisor.revision":"0"`},
		{"devmeta mode", "GET", "/device-meta", "", 200, `"pantavisor.mode":"local"`},
		{"usrmeta put", "PUT", "/user-meta/a.b", `{"x": 1}`, 200, ""},
		{"usrmeta put 2", "PUT", "/user-meta/plain", "text", 200, ""},
		{"usrmeta ls", "GET", "/user-meta", "", 200, `{"plain":"text","a.b":{"x":1}}`},
		{"usrmeta delete", "DELETE", "/user-meta/plain", "", 200, ""},
		{"usrmeta delete again", "DELETE", "/user-meta/plain", "", 404, "User meta does not exist"},
		{"devmeta put", "PUT", "/device-meta/my.key", "v", 200, ""},
		{"devmeta listed", "GET", "/device-meta", "", 200, `{"my.key":"v",`},
		{"devmeta put 2", "PUT", "/device-meta/my.key", "w", 200, ""},
		{"devmeta listed 2", "GET", "/device-meta", "", 200, `{"my.key":"w",`},
		{"devmeta delete missing", "DELETE", "/device-meta/nope", "", 404, "Device meta does not exist"},
		{"usrmeta empty value", "PUT", "/user-meta/k", "", 400, "empty"},
		{"config override", "PUT", "/user-meta/PV_DEBUG_SSH", "0", 200, ""},
		{"config override seen", "GET", "/config2", "", 200, `{"key":"PV_DEBUG_SSH","value":"0","modified":"metadata"}`},
		{"config override gone", "DELETE", "/user-meta/PV_DEBUG_SSH", "", 200, ""},
		{"config override reverted", "GET", "/config2", "", 200, `{"key":"PV_DEBUG_SSH","value":"1","modified":"default"}`},
		{"objects empty", "GET", "/objects", "", 200, `[]`},
		{"object put", "PUT", "/objects/" + sha, "hello object", 200, ""},
		{"object put again", "PUT", "/objects/" + sha, "hello object", 200, ""},
		{"objects ls", "GET", "/objects", "", 200, `[{"sha256":"` + sha + `","size":"12"}]`},
		{"object get", "GET", "/objects/" + sha, "", 200, "hello object"},
		{"object bad sum", "PUT", "/objects/" + strings.Repeat("0", 64), "x", 422, "Object has bad checksum"},
		{"object bad name", "GET", "/objects/abc", "", 400, "bad object name"},
		{"object missing", "GET", "/objects/" + strings.Repeat("1", 64), "", 400, "Request has bad object name"},
		{"steps", "GET", "/steps", "", 200, `"name":"0"`},
		{"factory done", "GET", "/steps/0/progress", "", 200, `{"status":"DONE","status-msg":"Factory revision","progress":100,"retries":0}`},
		{"step get", "GET", "/steps/0", "", 200, emptyState},
		{"step current", "GET", "/steps/current", "", 200, emptyState},
		{"step missing", "GET", "/steps/7", "", 404, "Resource does not exist"},
		{"step put", "PUT", "/steps/locals/dev", emptyState, 200, ""},
		{"step put progress", "GET", "/steps/locals/dev/progress", "", 200, `"status":"NEW"`},
		{"step get local", "GET", "/steps/locals/dev", "", 200, emptyState},
		{"step bad state", "PUT", "/steps/locals/bad", `{"#spec":"nope"}`, 422, "Parser"},
		{"step bad state gone", "GET", "/steps/locals/bad", "", 404, ""},
		{"step bad json", "PUT", "/steps/locals/dev", `{`, 422, "Parser"},
		{"step kept after bad put", "GET", "/steps/locals/dev", "", 200, emptyState},
		{"step bad key", "PUT", "/steps/locals/x2", `{"#spec":"pantavisor-service-system@1","../x":{}}`, 422, `\"..\" path element`},
		{"step bad name", "PUT", "/steps/locals/" + strings.Repeat("n", 65), emptyState, 400, "bad step name"},
		{"step not local", "PUT", "/steps/5", emptyState, 400, ""},
		{"commitmsg", "PUT", "/steps/locals/dev/commitmsg", "my message", 200, ""},
		{"commitmsg listed", "GET", "/steps", "", 200, `"commitmsg":"my message"`},
		{"commitmsg too big", "PUT", "/steps/0/commitmsg", strings.Repeat("m", 257), 413, ""},
		{"commitmsg missing rev", "PUT", "/steps/9/commitmsg", "m", 404, ""},
		{"daemons", "GET", "/daemons", "", 200, `[]`},
		{"daemon missing", "PUT", "/daemons/x", `{"action":"stop"}`, 404, "Daemon not found"},
		{"containers later", "GET", "/containers", "", 501, "not implemented"},
		{"command bad", "POST", "/commands", `{"op":"NOPE","payload":""}`, 400, "unknown op"},
		{"command no payload", "POST", "/commands", `{"op":"RUN_GC"}`, 400, "payload"},
		{"command local metadata", "POST", "/commands", `{"op":"UPDATE_METADATA","payload":"{\"k\":1}"}`, 409, ""},
		{"command go-remote disabled", "POST", "/commands", `{"op":"GO_REMOTE","payload":""}`, 409, ""},
		{"command unclaim", "POST", "/commands", `{"op":"UNCLAIM","payload":""}`, 204, ""},
		{"command run no updater", "POST", "/commands", `{"op":"LOCAL_RUN","payload":"locals/dev"}`, 501, ""},
		{"command gc", "POST", "/commands", `{"op":"RUN_GC","payload":""}`, 200, ""},
		{"unknown", "GET", "/nope", "", 400, "unknown endpoint: /nope"},
		{"wrong method", "DELETE", "/steps", "", 400, "Method not supported"},
		{"bad meta key dotdot", "PUT", "/user-meta/..", "v", 400, "dot name"},
		{"bad meta key slash", "PUT", "/user-meta/a%2Fb", "v", 400, "contains '/'"},
		{"meta too big", "PUT", "/device-meta/big", strings.Repeat("v", 4097), 413, ""},
		{"wakelocks", "GET", "/wakelocks", "", 200, `{"mode":"locks","count":0,"degraded":true,"autosleep":false,"settling":false,"polling":false,"run_window":false,"held":{"boot":0,"update":0,`},
		{"xconnect graph not built", "GET", "/xconnect-graph", "", 404, "Resource does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			got, b := in.call(t, tt.method, tt.path, body)
			if got != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, got, b, tt.status)
			}
			if !strings.Contains(string(b), tt.want) {
				t.Errorf("%s %s = %s, want it to contain %s", tt.method, tt.path, b, tt.want)
			}
			if got >= 400 {
				var e struct{ Error string }
				if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
					t.Errorf("%s %s error body = %q, want {\"Error\":…}", tt.method, tt.path, b)
				}
			}
		})
	}
	// Without an updater nothing knows the boot loader's committed
	// revision: GC refuses (gc_test.go runs it with one).
	if got, b := in.call(t, "POST", "/storage/gc", nil); got != 501 {
		t.Errorf("POST /storage/gc without updater = %d %s, want 501", got, b)
	}
	if got, _ := in.call(t, "GET", "/steps/locals/dev", nil); got != 200 {
		t.Errorf("GET /steps/locals/dev after a refused GC = %d, want 200", got)
	}
}

func TestNoSpace(t *testing.T) {
	in := start(t, newStorage(t), func(o *Options) {
		o.FreeSpace = func() (int64, error) { return 10, nil }
	})
	big := strings.Repeat("x", 100)
	sum := sha256.Sum256([]byte(big))
	sha := hex.EncodeToString(sum[:])
	if got, b := in.call(t, "PUT", "/objects/"+sha, strings.NewReader(big)); got != 507 {
		t.Errorf("PUT /objects (full) = %d %s, want 507", got, b)
	}
	if got, b := in.call(t, "PUT", "/steps/locals/x", strings.NewReader(emptyState)); got != 507 {
		t.Errorf("PUT /steps (full) = %d %s, want 507", got, b)
	}
	ents, _ := os.ReadDir(filepath.Join(in.storage, "objects"))
	if len(ents) != 0 {
		t.Errorf("objects/ after a full-disk upload = %v, want empty", ents)
	}
}

func TestMalformedHTTP(t *testing.T) {
	in := start(t, newStorage(t), nil)
	if got, _ := in.call(t, "PUT", "/user-meta/keep", strings.NewReader("me")); got != 200 {
		t.Fatalf("PUT /user-meta/keep = %d", got)
	}
	for _, raw := range []string{
		"garbage\r\n\r\n",
		"\x00\x01\x02\x03",
		"GET /user-meta HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n",
		"PUT /user-meta/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999\r\n\r\nabc",
		"GET /user-meta HTTP/1.1\r\nHost: other\r\n\r\n",
		"GET " + strings.Repeat("/a", 20000) + " HTTP/1.1\r\nHost: localhost\r\n\r\n",
	} {
		c, err := net.Dial("unix", in.d.Socket())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw)
		c.(*net.UnixConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.ReadAll(c)
		c.Close()
	}
	got, b := in.call(t, "GET", "/user-meta", nil)
	if got != 200 || !strings.Contains(string(b), `"keep":"me"`) {
		t.Errorf("GET /user-meta after bad input = %d %s, want keep=me", got, b)
	}
}

func TestRebootPoweroffSignal(t *testing.T) {
	for _, tt := range []struct {
		op   string
		want Exit
	}{{"REBOOT_DEVICE", ExitReboot}, {"POWEROFF_DEVICE", ExitPoweroff}} {
		t.Run(tt.op, func(t *testing.T) {
			in := start(t, newStorage(t), nil)
			got, b := in.call(t, "POST", "/commands", strings.NewReader(`{"op":"`+tt.op+`","payload":"bye"}`))
			if got != 200 {
				t.Fatalf("POST /commands %s = %d %s", tt.op, got, b)
			}
			if exit := in.wait(t); exit != tt.want {
				t.Errorf("exit after %s = %d, want %d", tt.op, exit, tt.want)
			}
			if _, err := os.Stat(in.d.Socket()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket after exit: %v, want removed", err)
			}
		})
	}
	t.Run("cancel", func(t *testing.T) {
		storage := newStorage(t)
		run := filepath.Join(t.TempDir(), "run")
		d, err := New(Options{Cmdline: "pv_appengine", Env: []string{"PV_STORAGE_MNTPOINT=" + storage, "PV_SYSTEM_RUNDIR=" + run}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan Exit)
		go func() { e, _ := d.Run(ctx); done <- e }()
		<-d.Ready()
		cancel()
		if got := <-done; got != ExitPoweroff {
			t.Errorf("exit after cancel = %d, want %d", got, ExitPoweroff)
		}
	})
}

// blockingStep holds the FSM inside a WAIT tick until released.
type blockingStep struct {
	stepCounter
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStep) Step(ctx context.Context) error {
	b.entered <- struct{}{}
	<-b.release
	return nil
}

func TestCommandQueue(t *testing.T) {
	bs := &blockingStep{entered: make(chan struct{}, 10), release: make(chan struct{})}
	in := start(t, newStorage(t), func(o *Options) { o.Platforms = bs })
	<-bs.entered // the FSM is busy: nothing takes commands now
	if got, b := in.call(t, "POST", "/commands", strings.NewReader(`{"op":"RUN_GC","payload":""}`)); got != 200 {
		t.Fatalf("first POST /commands = %d %s, want 200", got, b)
	}
	req, _ := http.NewRequest("POST", "http://localhost/commands", strings.NewReader(`{"op":"RUN_GC","payload":""}`))
	resp, err := in.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "120" {
		t.Errorf("second POST /commands = %d Retry-After %q, want 503 120", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(bs.release)
}

// fakeClock fires After channels only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []chan time.Time
	asked   chan struct{}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waiters = append(c.waiters, ch)
	c.mu.Unlock()
	c.asked <- struct{}{}
	return ch
}
func (c *fakeClock) tick() {
	c.mu.Lock()
	for _, w := range c.waiters {
		w <- time.Unix(0, 0)
	}
	c.waiters = nil
	c.mu.Unlock()
}

// stepCounter is a PlatformManager seam that only counts WAIT ticks.
type stepCounter struct {
	mu    sync.Mutex
	steps int
	nopContainers
}

func (s *stepCounter) Load(string, *state.State) error { return nil }
func (s *stepCounter) Stop(context.Context) error      { return nil }
func (s *stepCounter) Changed() <-chan struct{}        { return nil }
func (s *stepCounter) Step(context.Context) error {
	s.mu.Lock()
	s.steps++
	s.mu.Unlock()
	return nil
}

type nopContainers struct{}

func (nopContainers) RevisionStatus() string                        { return "READY" }
func (nopContainers) Running() (*state.State, map[string]int)       { return nil, nil }
func (nopContainers) Drivers() ctrl.Drivers                         { return nil }
func (nopContainers) StopPlatforms(context.Context, []string) error { return nil }
func (nopContainers) Transition(context.Context, string, *state.State, []string) error {
	return nil
}
func (nopContainers) GoalsReached() (bool, []string) { return true, nil }
func (nopContainers) Failures() error                { return nil }
func (nopContainers) Stable() bool                   { return true }
func (nopContainers) SetUpdating(bool)               {}

func (nopContainers) Containers() ([]ctrl.Container, error) { return nil, nil }
func (nopContainers) ContainerAction(string, string) error  { return nil }
func (nopContainers) Groups() ([]ctrl.Group, error)         { return nil, nil }
func (nopContainers) Signal(string, string, string) error   { return nil }

func TestWaitTick(t *testing.T) {
	clk := &fakeClock{asked: make(chan struct{}, 100)}
	sc := &stepCounter{}
	in := start(t, newStorage(t), func(o *Options) {
		o.Clock = clk
		o.Platforms = sc
	})
	for i := 0; i < 3; i++ {
		<-clk.asked
		clk.tick()
	}
	<-clk.asked
	sc.mu.Lock()
	got := sc.steps
	sc.mu.Unlock()
	if got != 4 {
		t.Errorf("platform steps after 3 ticks = %d, want 4", got)
	}
	if got, b := in.call(t, "GET", "/containers", nil); got != 200 || string(b) != "[]" {
		t.Errorf("GET /containers with a platform manager = %d %s, want 200 []", got, b)
	}
}

func TestTwoInstances(t *testing.T) {
	a := start(t, newStorage(t), nil)
	b := start(t, newStorage(t), nil)
	a.call(t, "PUT", "/user-meta/who", strings.NewReader("a"))
	b.call(t, "PUT", "/user-meta/who", strings.NewReader("b"))
	_, ga := a.call(t, "GET", "/user-meta", nil)
	_, gb := b.call(t, "GET", "/user-meta", nil)
	if string(ga) != `{"who":"a"}` || string(gb) != `{"who":"b"}` {
		t.Errorf("two instances user-meta = %s, %s, want a and b", ga, gb)
	}
}

func TestSocketInUse(t *testing.T) {
	a := start(t, newStorage(t), nil)
	d, err := New(Options{Cmdline: "pv_appengine", Env: []string{"PV_STORAGE_MNTPOINT=" + newStorage(t), "PV_SYSTEM_RUNDIR=" + a.run}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Run(context.Background()); err == nil {
		t.Error("second daemon on a live socket: Run = nil, want error")
	}
	if got, _ := a.call(t, "GET", "/buildinfo", nil); got != 200 {
		t.Errorf("first daemon after a second one failed: GET /buildinfo = %d, want 200", got)
	}
}

func TestParseRevisionRoles(t *testing.T) {
	st := `{"#spec":"pantavisor-service-system@1",
		"a/run.json":{"name":"a","roles":["mgmt"]},
		"b/run.json":{"name":"b"},
		"c/run.json":{"name":"c","roles":[]},
		"a/root.squashfs":"` + strings.Repeat("a", 64) + `"}`
	rev, err := parseRevision("1", []byte(st), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name        string
		known, mgmt bool
	}{{"a", true, true}, {"b", true, false}, {"c", true, false}, {"d", false, false}} {
		known, mgmt := rev.Caller(tt.name)
		if known != tt.known || mgmt != tt.mgmt {
			t.Errorf("Caller(%q) = %v, %v, want %v, %v", tt.name, known, mgmt, tt.known, tt.mgmt)
		}
	}
	for _, bad := range []string{`[]`, `{}`, `{"#spec":"pantavisor-multi-platform@1"}`,
		`{"#spec":"pantavisor-service-system@1","a":"nosha"}`, `{"#spec":"pantavisor-service-system@1","/abs":{}}`} {
		if _, err := parseRevision("1", []byte(bad), true); !errors.Is(err, ErrBadState) {
			t.Errorf("parseRevision(%s) = %v, want ErrBadState", bad, err)
		}
	}
}

// BenchmarkDeviceMeta measures GET /device-meta with 8 concurrent clients.
func BenchmarkDeviceMeta(b *testing.B) {
	in := start(b, newStorage(b), nil)
	const clients = 8
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	t0 := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := c; i < b.N; i += clients {
				s := time.Now()
				req, _ := http.NewRequest("GET", "http://localhost/device-meta", nil)
				resp, err := in.hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[c] = append(lat[c], time.Since(s))
			}
		}(c)
	}
	wg.Wait()
	el := time.Since(t0)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(len(all))/el.Seconds(), "req/s")
	}
}

// TestCallerRoles runs the full identity path through the daemon: the test
// process is the peer and a fake /proc root puts it in a container's
// cgroup. Only a "mgmt" role grants the privileged API (docs; upstream's
// roles-less default to mgmt is not copied).
func TestCallerRoles(t *testing.T) {
	storage := newStorage(t)
	st := `{"#spec":"pantavisor-service-system@1",
		"admin/run.json":{"name":"admin","roles":["mgmt"]},
		"plain/run.json":{"name":"plain"},
		"nobody/run.json":{"name":"nobody","roles":["nobody"]}}`
	if err := os.WriteFile(filepath.Join(storage, "trails", "0", ".pvr", "json"), []byte(st), 0o644); err != nil {
		t.Fatal(err)
	}
	proc := t.TempDir()
	pidDir := filepath.Join(proc, strconv.Itoa(os.Getpid()))
	os.MkdirAll(pidDir, 0o755)
	in := start(t, storage, func(o *Options) { o.ProcRoot = proc })
	for _, tt := range []struct {
		cgroup string
		status int
	}{
		{"0::/\n", 200},
		{"0::/lxc/admin\n", 200},
		{"0::/lxc/admin-2\n", 200}, // appengine suffix
		{"0::/lxc/plain\n", 403},
		{"0::/lxc/nobody\n", 403},
		{"0::/lxc/ghost\n", 500},
	} {
		os.WriteFile(filepath.Join(pidDir, "cgroup"), []byte(tt.cgroup), 0o644)
		in.hc.CloseIdleConnections() // identity is per connection
		got, b := in.call(t, "GET", "/device-meta", nil)
		if got != tt.status {
			t.Errorf("GET /device-meta as %q = %d %s, want %d", tt.cgroup, got, b, tt.status)
		}
	}
}

// TestBadRevision: a revision that cannot be loaded goes RUN → ROLLBACK →
// REBOOT (ERROR first for revision 0), i.e. exit status 0 so the boot
// loader (or pv-appengine) falls back to the last good revision.
func TestBadRevision(t *testing.T) {
	for _, tt := range []struct {
		name, rev, state string
	}{
		{"missing try revision", "5", ""},
		{"bad factory", "0", `{"#spec":"pantavisor-service-system@1","a/run.json":[]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			storage := newStorage(t)
			if tt.state != "" {
				os.WriteFile(filepath.Join(storage, "trails", "0", ".pvr", "json"), []byte(tt.state), 0o644)
			}
			d, err := New(Options{Cmdline: "pv_appengine pv_rev=" + tt.rev + " pv_try=" + tt.rev, NoLogServer: true,
				Env: []string{"PV_STORAGE_MNTPOINT=" + storage, "PV_SYSTEM_RUNDIR=" + filepath.Join(t.TempDir(), "run")}})
			if err != nil {
				t.Fatal(err)
			}
			exit, err := d.Run(context.Background())
			if err != nil || exit != ExitReboot {
				t.Errorf("Run with bad revision %s = %d, %v, want %d, nil", tt.rev, exit, err, ExitReboot)
			}
			if got := d.State(); got != StateExit {
				t.Errorf("final state = %s, want EXIT", got)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"embedded": Embedded, "APPENGINE": AppEngine, "standalone": Standalone} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	if _, err := ParseMode("docker"); err == nil {
		t.Error(`ParseMode("docker") = nil error, want error`)
	}
	for _, tt := range []struct {
		words []string
		want  Mode
		ok    bool
	}{{[]string{"pv_rev=0", "pv_appengine"}, AppEngine, true}, {[]string{"pv_standalone", "pv_embedded"}, Embedded, true}, {[]string{"pv_debug"}, "", false}} {
		if got, ok := modeFromWords(tt.words); got != tt.want || ok != tt.ok {
			t.Errorf("modeFromWords(%q) = %q, %v, want %q, %v", tt.words, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNewBadCmdline(t *testing.T) {
	for _, cl := range []string{"pv_rev=../../etc", "pv_rev=locals/a/b", "pv_try=/abs"} {
		if _, err := New(Options{Cmdline: cl}); err == nil {
			t.Errorf("New(cmdline %q) = nil error, want error", cl)
		}
	}
}

// TestGCThreshold: below PV_STORAGE_GC_THRESHOLD the WAIT tick collects
// unreferenced objects, but not within DEFERTIME of an upload.
func TestGCThreshold(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0), asked: make(chan struct{}, 100)}
	in := start(t, newStorage(t), func(o *Options) {
		o.Clock = clk
		o.NewUpdater = newTestUpdater // the updater runs the threshold GC
		o.Env = append(o.Env, "PV_STORAGE_GC_THRESHOLD=100", "PV_STORAGE_GC_THRESHOLD_DEFERTIME=600")
	})
	<-clk.asked // first WAIT round done
	sum := sha256.Sum256([]byte("orphan"))
	sha := hex.EncodeToString(sum[:])
	if got, b := in.call(t, "PUT", "/objects/"+sha, strings.NewReader("orphan")); got != 200 {
		t.Fatalf("PUT /objects = %d %s", got, b)
	}
	objects := func() string {
		_, b := in.call(t, "GET", "/objects", nil)
		return string(b)
	}
	clk.advance(599 * time.Second)
	clk.tick()
	<-clk.asked
	if got := objects(); !strings.Contains(got, sha) {
		t.Errorf("objects within the defer time = %s, want %s kept", got, sha)
	}
	clk.advance(2 * time.Second)
	clk.tick()
	<-clk.asked
	if got := objects(); got != "[]" {
		t.Errorf("objects after the defer time = %s, want [] (collected)", got)
	}
}

// TestOEMConfig: the revision's OEM file overrides the config file level.
func TestOEMConfig(t *testing.T) {
	storage := newStorage(t)
	oem := filepath.Join(storage, "trails", "0", "oem-x")
	os.MkdirAll(oem, 0o755)
	os.WriteFile(filepath.Join(oem, "default.config"), []byte("PV_CONTROL_REMOTE_ALWAYS=1\n"), 0o644)
	in := start(t, storage, func(o *Options) { o.Env = append(o.Env, "PV_OEM_NAME=oem-x") })
	_, b := in.call(t, "GET", "/config2", nil)
	if want := `{"key":"PV_CONTROL_REMOTE_ALWAYS","value":"1","modified":"oem config"}`; !strings.Contains(string(b), want) {
		t.Errorf("GET /config2 = %s, want it to contain %s", b, want)
	}
}
