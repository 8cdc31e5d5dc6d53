package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/hub"
	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/metadata"
)

// metaRecorder is a Publisher that keeps the last value of each key.
type metaRecorder struct {
	mu sync.Mutex
	m  map[string]string
}

func (r *metaRecorder) Publish(kvs []metadata.KV) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]string{}
	}
	for _, kv := range kvs {
		r.m[kv.Key] = string(kv.Value)
	}
	return nil
}

func (r *metaRecorder) list() []metadata.KV {
	r.mu.Lock()
	defer r.mu.Unlock()
	var kvs []metadata.KV
	for k, v := range r.m {
		kvs = append(kvs, metadata.KV{Key: k, Value: []byte(v)})
	}
	return kvs
}

func (r *metaRecorder) get(k string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[k]
}

// lab is a Hub on loopback and one device's files.
type lab struct {
	t       testing.TB
	hub     *hub.Server
	srv     *httptest.Server
	dir     string
	objects string
	state   json.RawMessage
	shas    []string
	meta    *metaRecorder
}

func newLab(t testing.TB, autoTokens map[string]string) *lab {
	return newLabWith(t, autoTokens, nil)
}

// newLabWith puts wrap (when not nil) in front of the hub, to inject faults.
func newLabWith(t testing.TB, autoTokens map[string]string, wrap func(http.Handler) http.Handler) *lab {
	t.Helper()
	h, err := hub.New(hub.Options{AutoTokens: autoTokens})
	if err != nil {
		t.Fatal(err)
	}
	var hh http.Handler = h
	if wrap != nil {
		hh = wrap(h)
	}
	l := &lab{t: t, hub: h, srv: httptest.NewServer(hh), dir: t.TempDir(), meta: &metaRecorder{}}
	t.Cleanup(l.srv.Close)
	l.objects = filepath.Join(l.dir, "objects")
	os.MkdirAll(l.objects, 0o755)
	state := map[string]any{"#spec": "pantavisor-service-system@1", "bsp/run.json": map[string]any{"linux": "kernel.img"}}
	for _, name := range []string{"bsp/kernel.img", "app/root.squashfs"} {
		b := []byte("content of " + name)
		sum := sha256.Sum256(b)
		sha := hex.EncodeToString(sum[:])
		os.WriteFile(filepath.Join(l.objects, sha), b, 0o644)
		state[name] = sha
		l.shas = append(l.shas, sha)
	}
	l.state, _ = json.Marshal(state)
	return l
}

// client makes a device client on the lab's files; conf is pantahub.config.
func (l *lab) client(extra map[string]string) *Client {
	conf := config.New(nil)
	confPath := filepath.Join(l.dir, "config", "pantahub.config")
	if err := conf.LoadPHConfig(confPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.t.Fatal(err)
	}
	for k, v := range extra {
		if err := conf.Set(k, v, config.PHConf); err != nil {
			l.t.Fatal(err)
		}
	}
	return New(Options{Config: conf, ConfigPath: confPath, RunDir: l.dir, Meta: l.meta, BaseURL: l.srv.URL,
		Factory: func() (Revision, error) {
			return Revision{State: l.state, Open: func(sha string) (*os.File, error) {
				return os.Open(filepath.Join(l.objects, sha))
			}}, nil
		},
		RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond})
}

// run starts c and stops it when the test ends.
func (l *lab) run(c *Client) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	l.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// await polls cond until it holds or 10s pass.
func (l *lab) await(what string, cond func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (l *lab) readRun(name string) string {
	b, _ := os.ReadFile(filepath.Join(l.dir, name))
	return string(b)
}

// user logs in as a Hub user and returns a request helper.
func (l *lab) user(name string) func(method, p string, body any, out any) int {
	var tok struct{ Token string }
	do := func(method, p, auth string, body, out any) int {
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		req, _ := http.NewRequest(method, l.srv.URL+p, bytes.NewReader(b))
		req.Header.Set("User-Agent", "test")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			l.t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	if code := do("POST", "/auth/login", "", map[string]string{"username": name, "password": name}, &tok); code != 200 {
		l.t.Fatalf("user login: %d", code)
	}
	return func(method, p string, body, out any) int { return do(method, p, tok.Token, body, out) }
}

type trailOut struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
}

func TestAutoTokenRegistersOwnedDeviceAndPostsFactoryTrail(t *testing.T) {
	l := newLab(t, map[string]string{"factorytok": "user1"})
	// The Hub already has one of the two objects: it answers 409 and the
	// device must skip it, not fail.
	u := l.user("user1")
	var put struct {
		URL string `json:"signed-puturl"`
	}
	first, _ := os.ReadFile(filepath.Join(l.objects, l.shas[0]))
	if code := u("POST", "/objects/", map[string]string{"objectname": "x", "sha256sum": l.shas[0], "size": "17"}, &put); code != 200 {
		t.Fatalf("pre-upload: %d", code)
	}
	req, _ := http.NewRequest("PUT", put.URL, bytes.NewReader(first))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("pre-upload put: %v %v", err, resp)
	}

	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "factorytok"})
	l.run(c)
	l.await("idle", func() bool { return c.State() == StateIdle })

	id := strings.TrimSpace(l.readRun("device-id"))
	conf, _ := os.ReadFile(filepath.Join(l.dir, "config", "pantahub.config"))
	for _, want := range []string{"PH_CREDS_ID=" + id, "PH_CREDS_PRN=prn:::devices:/" + id, "PH_CREDS_SECRET="} {
		if id == "" || !strings.Contains(string(conf), want) {
			t.Errorf("pantahub.config lacks %q:\n%s", want, conf)
		}
	}
	if ch := l.readRun("challenge"); ch != "" {
		t.Errorf("an owned device has challenge %q", ch)
	}
	var trails []trailOut
	u("GET", "/trails/", nil, &trails)
	if len(trails) != 1 || trails[0].ID != id || trails[0].Owner != "prn:pantahub.com:auth:/user1" {
		t.Fatalf("user1's trails = %+v, want the device's %s", trails, id)
	}
	var state map[string]any
	if code := u("GET", "/trails/"+id+"/steps/0/state", nil, &state); code != 200 || state["app/root.squashfs"] != l.shas[1] {
		t.Errorf("factory state = %d %v", code, state)
	}
	for _, sha := range l.shas {
		if code := u("GET", "/objects/"+sha, nil, nil); code != 200 {
			t.Errorf("object %s on the hub: %d", sha, code)
		}
	}
	for k, want := range map[string]string{"pantahub.claimed": "1", "pantavisor.claimed": "1", "pantahub.state": "idle", "pantahub.online": "1"} {
		if got := l.meta.get(k); got != want {
			t.Errorf("devmeta %s = %q, want %q", k, got, want)
		}
	}
}

// A device claimed after it logged in must log in again: its first token
// carries owner "" and a trail posted with it would belong to nobody.
func TestClaimWithChallengeThenTrailBelongsToOwner(t *testing.T) {
	l := newLab(t, nil)
	c := l.client(nil)
	l.run(c)
	l.await("challenge and pantahub.claimed=0", func() bool {
		return l.readRun("challenge") != "" && c.State() == StateClaim && l.meta.get("pantahub.claimed") == "0"
	})
	id := l.readRun("device-id")
	u := l.user("user2")
	if code := u("PUT", "/devices/"+id+"?challenge=wrong-wrong-wrong", nil, nil); code != http.StatusConflict {
		t.Errorf("claim with a wrong challenge: %d, want 409", code)
	}
	if code := u("PUT", "/devices/"+id+"?challenge="+l.readRun("challenge"), nil, nil); code != 200 {
		t.Fatalf("claim: %d", code)
	}
	l.await("idle", func() bool { return c.State() == StateIdle })
	var trails []trailOut
	u("GET", "/trails/", nil, &trails)
	if len(trails) != 1 || trails[0].Owner != "prn:pantahub.com:auth:/user2" {
		t.Fatalf("user2's trails = %+v, want the device's, owned by user2", trails)
	}
	if ch := l.readRun("challenge"); ch != "" {
		t.Errorf("claimed device keeps challenge %q", ch)
	}
}

// A reboot reuses the credentials in pantahub.config: no new device.
func TestRestartReusesCredentials(t *testing.T) {
	l := newLab(t, map[string]string{"tok": "user1"})
	ctx, cancel := context.WithCancel(context.Background())
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok"})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	l.await("idle", func() bool { return c.State() == StateIdle })
	cancel()
	<-done
	id := l.readRun("device-id")

	c2 := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok"})
	l.run(c2)
	l.await("idle again", func() bool { return c2.State() == StateIdle })
	if n := l.hub.Stats().Registered; n != 1 {
		t.Errorf("%d registrations, want 1", n)
	}
	if got := l.readRun("device-id"); got != id {
		t.Errorf("device-id %q after restart, want %q", got, id)
	}
}

// An unknown auto-token is refused; the device keeps retrying, backing off,
// and registers nothing.
func TestBadAutoTokenRetries(t *testing.T) {
	l := newLab(t, map[string]string{"tok": "user1"})
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "nottok"})
	l.run(c)
	l.await("a few tries", func() bool { return l.hub.Stats().Requests >= 3 })
	if c.State() != StateRegister || l.hub.Stats().Registered != 0 {
		t.Errorf("state %s, %d registered", c.State(), l.hub.Stats().Registered)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "config", "pantahub.config")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pantahub.config written without credentials: %v", err)
	}
}

// A token the Hub stops accepting (expired, key rotated) is dropped on the
// 401 and the device logs in again instead of retrying with no token.
func TestUnauthorizedMidSyncLogsInAgain(t *testing.T) {
	var mu sync.Mutex
	refused := false
	l := newLabWith(t, map[string]string{"tok": "user1"}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			first := !refused && r.Method == "GET" && r.URL.Path == "/trails/"
			refused = refused || first
			mu.Unlock()
			if first {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok"})
	l.run(c)
	l.await("idle after a refused token", func() bool { return c.State() == StateIdle })
	if n := l.hub.Stats().Logins; n < 2 {
		t.Errorf("%d logins, want a second one after the 401", n)
	}
}

// Once idle, the device metadata goes to the Hub (PUT), and again after a
// change; an unchanged set is not sent twice.
func TestDeviceMetaPushed(t *testing.T) {
	l := newLab(t, map[string]string{"tok": "user1"})
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok"})
	c.o.DeviceMeta = l.meta.list
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	l.await("idle", func() bool { return c.State() == StateIdle })
	id := l.readRun("device-id")
	u := l.user("user1")
	hubMeta := func() map[string]any {
		var m map[string]any
		u("GET", "/devices/"+id+"/device-meta", nil, &m)
		return m
	}
	l.await("pantahub.state idle on the hub", func() bool { return hubMeta()["pantahub.state"] == "idle" })
	l.meta.Publish([]metadata.KV{{Key: "pantavisor.arch", Value: []byte("x86_64")}})
	c.DeviceMetaChanged()
	l.await("the change on the hub", func() bool { return hubMeta()["pantavisor.arch"] == "x86_64" })

	// Stopped, the client is ours to call: an unchanged set is not sent.
	cancel()
	<-done
	done <- nil
	before := l.hub.Stats().Requests
	if err := c.pushMeta(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := l.hub.Stats().Requests - before; got != 0 {
		t.Errorf("%d requests for an unchanged device-meta", got)
	}
}

// The owner's user metadata reaches the device (strings as they are,
// other values as JSON); an unchanged set is a 304 and is not applied again.
func TestUserMetaPulled(t *testing.T) {
	l := newLab(t, map[string]string{"tok": "user1"})
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok"})
	var mu sync.Mutex
	var got []metadata.KV
	applied := 0
	c.o.UserMeta = func(kvs []metadata.KV) error {
		mu.Lock()
		defer mu.Unlock()
		got, applied = kvs, applied+1
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	l.await("idle", func() bool { return c.State() == StateIdle })
	id := l.readRun("device-id")
	u := l.user("user1")
	if code := u("PUT", "/devices/"+id+"/user-meta", map[string]any{"color": "blue", "obj": map[string]any{"a": 1}}, nil); code != 200 {
		t.Fatalf("PUT user-meta: %d", code)
	}
	l.await("user-meta on the device", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2 && string(got[0].Value) == "blue" && string(got[1].Value) == `{"a":1}`
	})
	cancel()
	<-done
	done <- nil
	mu.Lock()
	n := applied
	mu.Unlock()
	before := l.hub.Stats().Requests
	if err := c.pullUserMeta(context.Background()); err != nil {
		t.Fatal(err)
	}
	if applied != n || l.hub.Stats().Requests-before != 1 {
		t.Errorf("an unchanged user-meta was applied again (%d -> %d) or cost %d requests", n, applied, l.hub.Stats().Requests-before)
	}
}

func TestStateObjects(t *testing.T) {
	refs, err := stateObjects(json.RawMessage(`{"#spec":"x","a/b.json":{"k":"` + strings.Repeat("a", 64) + `"},"a/c":"` + strings.Repeat("b", 64) + `","d":"short"}`))
	if err != nil || len(refs) != 1 || refs[0].Name != "c" {
		t.Fatalf("refs = %v, %v", refs, err)
	}
	if _, err := stateObjects(json.RawMessage(`[]`)); err == nil {
		t.Error("a non-object state was accepted")
	}
}

// Errors back off; an unclaimed device polls at the interval however long
// it waits (no 5-minute gap after the user claims it), and an answer
// resets the backoff.
func TestRetryDelay(t *testing.T) {
	c := New(Options{RetryMin: time.Second, RetryMax: time.Hour, PollInterval: 4 * time.Second})
	for range 5 {
		c.retryDelay(errors.New("down"))
	}
	if d := c.retryDelay(errors.New("down")); d < 16*time.Second {
		t.Errorf("6th failure waits %v, want >= 16s", d)
	}
	for range 50 {
		if d := c.retryDelay(nil); d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("claim poll waits %v, want [2s, 4s]", d)
		}
	}
	if d := c.retryDelay(errors.New("down")); d > time.Second {
		t.Errorf("first failure after an answer waits %v, want <= 1s", d)
	}
}

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	c := New(Options{RetryMin: time.Second, RetryMax: 8 * time.Second})
	seen := map[time.Duration]bool{}
	for i := range 200 {
		c.failures = i % 10
		d := c.backoff()
		if d < 500*time.Millisecond || d > 8*time.Second {
			t.Fatalf("backoff %v out of [0.5s, 8s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct delays: no jitter", len(seen))
	}
}

func FuzzStateObjects(f *testing.F) {
	f.Add([]byte(`{"a/b":"` + strings.Repeat("c", 64) + `"}`))
	f.Add([]byte(`{"a":{"b":1}}`))
	f.Add([]byte(`{"/":"` + strings.Repeat("d", 64) + `"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		refs, err := stateObjects(b)
		for _, r := range refs {
			if err != nil || len(r.SHA) != 64 || strings.Contains(r.Name, "/") {
				t.Fatalf("bad ref %+v (err %v)", r, err)
			}
		}
	})
}

// PH_METADATA_DEVMETA_INTERVAL and PH_METADATA_USRMETA_INTERVAL, not
// PollInterval, pace the metadata; a device-meta change waiting for its
// interval does not hold the user-meta pulls back.
func TestMetadataIntervals(t *testing.T) {
	l := newLab(t, map[string]string{"tok": "user1"})
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok"})
	c.o.PollInterval = time.Hour
	c.o.DeviceMeta = l.meta.list
	c.o.DevMetaInterval = time.Hour
	c.o.UserMetaInterval = 10 * time.Millisecond
	var mu sync.Mutex
	var got []metadata.KV
	c.o.UserMeta = func(kvs []metadata.KV) error {
		mu.Lock()
		defer mu.Unlock()
		got = kvs
		return nil
	}
	l.run(c)
	l.await("idle", func() bool { return c.State() == StateIdle })
	id := l.readRun("device-id")
	u := l.user("user1")
	hubMeta := func() map[string]any {
		var m map[string]any
		u("GET", "/devices/"+id+"/device-meta", nil, &m)
		return m
	}
	l.await("pantahub.state idle on the hub", func() bool { return hubMeta()["pantahub.state"] == "idle" })
	l.meta.Publish([]metadata.KV{{Key: "pantavisor.arch", Value: []byte("x86_64")}})
	c.DeviceMetaChanged()
	for i := range 3 {
		v := fmt.Sprint("v", i)
		if code := u("PUT", "/devices/"+id+"/user-meta", map[string]any{"k": v}, nil); code != 200 {
			t.Fatalf("PUT user-meta: %d", code)
		}
		l.await("user-meta "+v+" on the device", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) == 1 && string(got[0].Value) == v
		})
	}
	if hubMeta()["pantavisor.arch"] != nil {
		t.Error("device-meta pushed before PH_METADATA_DEVMETA_INTERVAL")
	}
}

// A short DevMetaInterval pushes a change soon though PollInterval is long.
func TestDevMetaInterval(t *testing.T) {
	l := newLab(t, map[string]string{"tok": "user1"})
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok"})
	c.o.PollInterval = time.Hour
	c.o.DeviceMeta = l.meta.list
	c.o.DevMetaInterval = 10 * time.Millisecond
	l.run(c)
	l.await("idle", func() bool { return c.State() == StateIdle })
	id := l.readRun("device-id")
	u := l.user("user1")
	hubMeta := func() map[string]any {
		var m map[string]any
		u("GET", "/devices/"+id+"/device-meta", nil, &m)
		return m
	}
	l.await("pantahub.state idle on the hub", func() bool { return hubMeta()["pantahub.state"] == "idle" })
	for i := range 3 {
		v := fmt.Sprint("v", i)
		l.meta.Publish([]metadata.KV{{Key: "pantavisor.arch", Value: []byte(v)}})
		c.DeviceMetaChanged()
		l.await("device-meta "+v+" on the hub", func() bool { return hubMeta()["pantavisor.arch"] == v })
	}
}

// PH_LIBEVENT_HTTP_TIMEOUT bounds a Hub request that gets no answer.
func TestRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	l := newLabWith(t, map[string]string{"tok": "user1"}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			h.ServeHTTP(w, r)
		})
	})
	defer close(release)
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok", "PH_LIBEVENT_HTTP_TIMEOUT": "1", "PH_LIBEVENT_HTTP_RETRIES": "0"})
	c.o.HTTP = nil
	c = New(c.o)
	start := time.Now()
	err := c.registerNew(context.Background())
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("register on a silent hub: %v", err)
	}
	if took < time.Second || took > 5*time.Second {
		t.Errorf("timed out after %v, want 1s", took)
	}
	if got := RequestTimeout(config.New(nil)); got != 60*time.Second {
		t.Errorf("default timeout %v, want 60s", got)
	}
}

// PH_CREDS_TYPE=tpm is refused, logged, and costs no request.
func TestCredsTypeTPMRefused(t *testing.T) {
	l := newLab(t, map[string]string{"tok": "user1"})
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok", "PH_CREDS_TYPE": "tpm"})
	var logs bytes.Buffer
	c.o.Log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.Run(ctx)
	if !errors.Is(err, ErrCredsType) {
		t.Fatalf("Run with PH_CREDS_TYPE=tpm: %v", err)
	}
	if n := l.hub.Stats().Requests; n != 0 {
		t.Errorf("%d requests to the hub", n)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "no TPM support") {
		t.Errorf("not logged as an error: %q", logs.String())
	}
	if l.meta.get("pantahub.online") != "0" {
		t.Error("pantahub.online not 0")
	}
}

// With PH_ONLINE_REQUEST_THRESHOLD=2 the device stays online through two
// failed requests in a row and goes offline at the third; an answer
// resets the count. At 0 (the default) one failure is enough.
func TestOnlineRequestThreshold(t *testing.T) {
	var down atomic.Bool
	l := newLabWith(t, map[string]string{"tok": "user1"}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	for _, tc := range []struct {
		threshold string
		onlineFor int // failed refreshes still online
	}{{"0", 0}, {"2", 2}} {
		c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok", "PH_ONLINE_REQUEST_THRESHOLD": tc.threshold})
		ctx := context.Background()
		if _, err := c.register(ctx); err != nil {
			t.Fatal(err)
		}
		for round := range 2 {
			down.Store(false)
			if err := c.refresh(ctx); err != nil {
				t.Fatal(err)
			}
			c.publish(boolMeta("pantahub.online", true))
			down.Store(true)
			for i := 1; i <= tc.onlineFor+1; i++ {
				if err := c.refresh(ctx); err == nil {
					t.Fatal("refresh on a failing hub succeeded")
				}
				c.offline()
				want := "1"
				if i > tc.onlineFor {
					want = "0"
				}
				if got := l.meta.get("pantahub.online"); got != want {
					t.Errorf("threshold %s round %d: after %d failed requests online=%s, want %s", tc.threshold, round, i, got, want)
				}
			}
		}
	}
}

// A request the Hub drops unanswered is sent again PH_LIBEVENT_HTTP_RETRIES
// times; an answer, even an error status, is not retried.
func TestHTTPRetries(t *testing.T) {
	var drops, seen atomic.Int64
	l := newLabWith(t, map[string]string{"tok": "user1"}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen.Add(1)
			if drops.Add(-1) >= 0 {
				panic(http.ErrAbortHandler) // the connection drops, no answer
			}
			h.ServeHTTP(w, r)
		})
	})
	for _, tc := range []struct {
		retries   string
		drops     int64
		ok        bool
		wantTries int64
	}{
		{"0", 1, false, 1},
		{"1", 1, true, 2}, // the default
		{"1", 2, false, 2},
		{"3", 3, true, 4},
	} {
		c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok", "PH_LIBEVENT_HTTP_RETRIES": tc.retries})
		drops.Store(tc.drops)
		seen.Store(0)
		err := c.login(context.Background()) // no credentials: the hub answers 401 once reached
		var he *HTTPError
		reached := errors.As(err, &he)
		if reached != tc.ok || seen.Load() != tc.wantTries {
			t.Errorf("retries %s, %d drops: reached %v (%v) after %d tries, want %v after %d", tc.retries, tc.drops, reached, err, seen.Load(), tc.ok, tc.wantTries)
		}
	}
	// An error status is an answer.
	c := l.client(map[string]string{"PH_LIBEVENT_HTTP_RETRIES": "3"})
	drops.Store(0)
	seen.Store(0)
	c.login(context.Background())
	if seen.Load() != 1 {
		t.Errorf("a 401 was sent %d times", seen.Load())
	}
}

// PV_LIBTHHTTP_LOG_LEVEL 4 (DEBUG) or PV_LIBEVENT_DEBUG_MODE logs every Hub
// request with its answer; the default level 3 logs none.
func TestHTTPRequestLogging(t *testing.T) {
	l := newLab(t, map[string]string{"tok": "user1"})
	for _, tc := range []struct {
		key, val string
		logged   bool
	}{
		{"PV_LIBTHHTTP_LOG_LEVEL", "3", false},
		{"PV_LIBTHHTTP_LOG_LEVEL", "4", true},
		{"PV_LIBTHHTTP_LOG_LEVEL", "5", true},
		{"PV_LIBEVENT_DEBUG_MODE", "1", true},
	} {
		c := l.client(nil)
		if err := c.o.Config.Set(tc.key, tc.val, config.PVConf); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		c.o.Log = slog.New(slog.NewTextHandler(&logs, nil))
		c.login(context.Background()) // no credentials: 401
		got := strings.Contains(logs.String(), "msg=\"remote http\" method=POST path=/auth/login status=401")
		if got != tc.logged {
			t.Errorf("%s=%s: request logged %v, want %v: %q", tc.key, tc.val, got, tc.logged, logs.String())
		}
	}
}
