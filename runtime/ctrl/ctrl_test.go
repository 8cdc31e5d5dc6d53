package ctrl

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCgroupName(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
		host     bool
		wantErr  bool
	}{
		{"v2 host", "0::/\n", "", true, false},
		{"v2 host appengine", "0::/..\n", "", true, false},
		{"v2 other host cgroup", "0::/system.slice/foo.service\n", "", true, false},
		{"v2 container", "0::/lxc/app\n", "app", false, false},
		{"v2 container nested", "0::/lxc/app/init.scope\n", "app", false, false},
		{"v2 suffix kept", "0::/pantavisor/lxc/app-12\n", "app-12", false, false},
		{"v2 container named like the host", "0::/lxc/_pv_\n", "_pv_", false, false},
		{"v1 host", "12:name=pantavisor:/\n0::/\n", "", true, false},
		{"v1 container", "4:memory:/x\n12:name=pantavisor:/lxc/web\n", "web", false, false},
		{"v1 container no lxc prefix", "12:name=pantavisor:/web\n", "web", false, false},
		{"v1 container named like the host", "12:name=pantavisor:/lxc/_pv_\n", "_pv_", false, false},
		{"v1 wins over v2", "12:name=pantavisor:/lxc/web\n0::/\n", "web", false, false},
		{"empty lxc name", "0::/lxc/\n", "", false, true},
		{"no hierarchy", "4:memory:/x\n", "", false, true},
		{"garbage", "hello\n", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, host, err := CgroupName(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("CgroupName(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want || host != tt.host {
				t.Errorf("CgroupName(%q) = %q, host %v, want %q, host %v", tt.in, got, host, tt.want, tt.host)
			}
		})
	}
}

// TestResolveRoleByName: a caller gets the role of the platform its cgroup
// names exactly; the App Engine "-<digits>" fallback only applies when the
// exact name is no platform, and a container named "_pv_" is not the host
// (issue 11, defect 2).
func TestResolveRoleByName(t *testing.T) {
	plats := platforms{"alpha": true, "alpha-7": false, "admin": true, "app": false}
	tests := []struct {
		cgroup    string
		appengine bool
		want      Caller // Pid 0
		wantErr   bool
	}{
		{"0::/lxc/alpha-7\n", true, Caller{Name: "alpha-7"}, false},
		{"0::/lxc/alpha-7\n", false, Caller{Name: "alpha-7"}, false},
		{"12:name=pantavisor:/lxc/alpha-7\n", true, Caller{Name: "alpha-7"}, false},
		{"0::/lxc/alpha\n", true, Caller{Name: "alpha", Mgmt: true}, false},
		{"0::/lxc/admin-3\n", true, Caller{Name: "admin", Mgmt: true}, false},
		{"0::/lxc/app-3\n", true, Caller{Name: "app"}, false},
		{"0::/lxc/admin-3\n", false, Caller{}, true},
		{"0::/lxc/alpha-7-2\n", true, Caller{Name: "alpha-7"}, false},
		{"0::/lxc/_pv_\n", true, Caller{}, true},
		{"0::/lxc/_pv_\n", false, Caller{}, true},
		{"12:name=pantavisor:/lxc/_pv_\n", false, Caller{}, true},
		{"0::/\n", false, Caller{Name: HostName, Mgmt: true}, false},
	}
	for _, tt := range tests {
		h := New(Options{Platforms: plats, AppEngine: tt.appengine})
		got, err := h.resolve(0, strings.NewReader(tt.cgroup))
		if (err != nil) != tt.wantErr {
			t.Errorf("resolve(%q, appengine %v) error = %v, want error %v", tt.cgroup, tt.appengine, err, tt.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, ErrUnknownCaller) {
			t.Errorf("resolve(%q) error = %v, want ErrUnknownCaller", tt.cgroup, err)
		}
		if got != tt.want {
			t.Errorf("resolve(%q, appengine %v) = %+v, want %+v", tt.cgroup, tt.appengine, got, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		method, path string
		want         string // pattern, "405" or "404"
		args         []string
	}{
		{"GET", "/steps", "/steps", nil},
		{"GET", "/steps/", "/steps", nil},
		{"GET", "/steps/0", "/steps/{}", []string{"0"}},
		{"GET", "/steps/locals/x", "/steps/locals/{}", []string{"x"}},
		{"GET", "/steps/0/progress", "/steps/{}/progress", []string{"0"}},
		{"GET", "/steps/locals/x/progress", "/steps/locals/{}/progress", []string{"x"}},
		{"PUT", "/steps/locals/x", "/steps/locals/{}", []string{"x"}},
		{"PUT", "/steps/0", "405", nil},
		{"PUT", "/steps/3/commitmsg", "/steps/{}/commitmsg", []string{"3"}},
		{"POST", "/steps", "405", nil},
		{"DELETE", "/user-meta/k", "/user-meta/{}", []string{"k"}},
		{"PUT", "/user-meta/a%2Fb", "/user-meta/{}", []string{"a/b"}},
		{"PUT", "/user-meta", "405", nil},
		{"GET", "/user-meta/k", "405", nil},
		{"GET", "/nope", "404", nil},
		{"GET", "/", "404", nil},
		{"GET", "/steps/a/b/c/d", "404", nil},
		{"PUT", "/drivers/load", "/drivers/load", nil},
		{"PUT", "/drivers/wifi/load", "/drivers/{}/load", []string{"wifi"}},
		{"POST", "/commands", "/commands", nil},
		{"GET", "/commands", "405", nil},
	}
	for _, tt := range tests {
		u, _ := http.NewRequest(tt.method, "http://localhost"+tt.path, nil)
		segs, err := splitPath(u.URL)
		if err != nil {
			t.Fatalf("splitPath(%q): %v", tt.path, err)
		}
		rt, args, allowed := match(compile(DefaultRoutes()), segs, tt.method)
		got := "404"
		switch {
		case rt != nil:
			got = rt.Pattern
		case len(allowed) > 0:
			got = "405"
		}
		if got != tt.want {
			t.Errorf("match(%s %s) = %s, want %s", tt.method, tt.path, got, tt.want)
		}
		if strings.Join(args, "|") != strings.Join(tt.args, "|") {
			t.Errorf("match(%s %s) args = %q, want %q", tt.method, tt.path, args, tt.args)
		}
	}
}

// TestRouteTable checks every route has a handler and unique method+pattern.
func TestRouteTable(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range DefaultRoutes() {
		k := rt.Method + " " + rt.Pattern
		if seen[k] {
			t.Errorf("duplicate route %s", k)
		}
		seen[k] = true
		if rt.Serve == nil {
			t.Errorf("route %s has no handler", k)
		}
		if rt.Method == "GET" && rt.Limit != 0 {
			t.Errorf("read route %s accepts a body", k)
		}
		if rt.Access == Anyone && rt.Pattern != "/signal" {
			t.Errorf("route %s is open to non-mgmt callers", k)
		}
	}
}

func TestValidRevision(t *testing.T) {
	good := []string{"0", "12", "locals/x", "locals/" + strings.Repeat("a", 64)}
	bad := []string{"", "current", "locals/", "locals/..", "locals/a/b", "01", "locals/" + strings.Repeat("a", 65), "../0", "1a", "/0"}
	for _, r := range good {
		if err := ValidRevision(r); err != nil {
			t.Errorf("ValidRevision(%q) = %v, want nil", r, err)
		}
	}
	for _, r := range bad {
		if err := ValidRevision(r); err == nil {
			t.Errorf("ValidRevision(%q) = nil, want error", r)
		}
	}
}

// listen serves h on a real unix socket and returns an HTTP client for it.
func listen(t *testing.T, h *Handler) (*http.Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pv-ctrl")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	return hc, path
}

func call(t *testing.T, hc *http.Client, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type platforms map[string]bool

func (p platforms) Caller(name string) (bool, bool) { m, ok := p[name]; return ok, m }

// TestCallerIdentity runs the peer-credential path for real: the test
// process is the peer, and a fake /proc root decides its cgroup.
func TestCallerIdentity(t *testing.T) {
	proc := t.TempDir()
	pidDir := filepath.Join(proc, strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(pidDir, 0o755); err != nil {
		t.Fatal(err)
	}
	setCgroup := func(s string) {
		if err := os.WriteFile(filepath.Join(pidDir, "cgroup"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := New(Options{ProcRoot: proc, Platforms: platforms{"admin": true, "app": false, "alpha": true, "alpha-7": false}, BuildInfo: "bi", AppEngine: true})
	hc, _ := listen(t, h)
	tests := []struct {
		cgroup, method, path string
		status               int
	}{
		{"0::/\n", "GET", "/buildinfo", 200},
		{"0::/lxc/admin\n", "GET", "/buildinfo", 200},
		{"0::/lxc/admin-3\n", "GET", "/buildinfo", 200},
		{"0::/lxc/app\n", "GET", "/buildinfo", 403},
		{"0::/lxc/app\n", "POST", "/signal", 501},           // any caller; no backend yet
		{"0::/lxc/app\n", "PUT", "/drivers/wifi/load", 403}, // managed drivers: mgmt only
		{"0::/lxc/app\n", "GET", "/drivers", 403},
		{"0::/lxc/stranger\n", "GET", "/buildinfo", 500},
		// Issue 11, defect 2: exact names first, and "_pv_" is no platform.
		{"0::/lxc/alpha-7\n", "GET", "/buildinfo", 403},
		{"0::/lxc/_pv_\n", "GET", "/buildinfo", 500},
		{"12:name=pantavisor:/lxc/admin\n", "GET", "/buildinfo", 200},
	}
	for _, tt := range tests {
		setCgroup(tt.cgroup)
		// A new connection per case: identity is fixed per connection, at accept.
		hc.CloseIdleConnections()
		got, body := call(t, hc, tt.method, tt.path, `{"type":"ready","payload":""}`)
		if got != tt.status {
			t.Errorf("%s %s as %q = %d %s, want %d", tt.method, tt.path, tt.cgroup, got, body, tt.status)
		}
		if got != 200 {
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Errorf("%s %s as %q body = %q, want {\"Error\":…}", tt.method, tt.path, tt.cgroup, body)
			}
		}
	}
}

func TestHostHeader(t *testing.T) {
	hc, path := listen(t, New(Options{BuildInfo: "bi", ProcRoot: "/proc"}))
	if got, _ := call(t, hc, "GET", "/buildinfo", ""); got != 200 {
		t.Fatalf("GET /buildinfo = %d, want 200", got)
	}
	// A foreign Host gets the connection closed, no answer.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /buildinfo HTTP/1.1\r\nHost: evil.example\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if len(b) != 0 {
		t.Errorf("foreign Host answer = %q, want connection closed", b)
	}
	// HTTP/1.0 without Host is fine.
	c2, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "GET /buildinfo HTTP/1.0\r\n\r\n")
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ = io.ReadAll(c2)
	if !strings.HasPrefix(string(b), "HTTP/1.0 200") {
		t.Errorf("HTTP/1.0 without Host answer = %q, want 200", b)
	}
}

func TestUnsupportedProtocol(t *testing.T) {
	hc, path := listen(t, New(Options{BuildInfo: "bi"}))
	for _, raw := range []string{"\x16\x03\x01\x02\x00", "hello world\n", "hello there\r\n\r\n", "{\"op\":1}", "GET /buildinfo\r\n\r\n"} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(b), "HTTP/1.1 400 ") || !strings.HasSuffix(string(b), "\r\n\r\n"+unsupportedProtocol) {
			t.Errorf("answer to %q = %q, want a 400 with body %s", raw, b, unsupportedProtocol)
		}
	}
	if got, _ := call(t, hc, "GET", "/buildinfo", ""); got != 200 {
		t.Errorf("GET /buildinfo after bad peers = %d, want 200", got)
	}
}

func TestListenStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pv-ctrl")
	// A stale socket file (nobody listening) is replaced.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket missing: %v", err)
	}
	ln1, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over stale socket: %v", err)
	}
	defer ln1.Close()
	go func() {
		for {
			c, err := ln1.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// A live socket is not stolen.
	if _, err := Listen(path); !errors.Is(err, ErrInUse) {
		t.Errorf("Listen over live socket = %v, want ErrInUse", err)
	}
}

func TestNotImplemented(t *testing.T) {
	h := New(Options{})
	for _, p := range []struct{ m, p string }{
		{"GET", "/containers"}, {"PUT", "/containers/x"}, {"GET", "/groups"}, {"POST", "/signal"},
		{"GET", "/drivers"}, {"PUT", "/drivers/load"}, {"GET", "/xconnect-graph"}, {"GET", "/wakelocks"},
	} {
		req := httptest.NewRequest(p.m, "http://localhost"+p.p, strings.NewReader(`{"action":"stop"}`))
		req = req.WithContext(WithCaller(req.Context(), Caller{Name: HostName, Mgmt: true}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 501 || !strings.Contains(rec.Body.String(), `"Error":"not implemented"`) {
			t.Errorf("%s %s = %d %s, want 501 not implemented", p.m, p.p, rec.Code, rec.Body)
		}
	}
}

// FuzzRoute: any method and path never panics; unmatched ones answer JSON
// 404/405/400.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/steps", "/steps/locals/x/progress", "/user-meta/%2F", "/objects/zz",
		"//", "/steps/../../etc", "/%zz", "/commands", "/a/b/c/d/e/f", "/drivers/x/load"} {
		f.Add("GET", s)
		f.Add("PUT", s)
	}
	h := New(Options{BuildInfo: "x"})
	f.Fuzz(func(t *testing.T, method, path string) {
		req, err := http.NewRequest(method, "http://localhost/", nil)
		if err != nil {
			return
		}
		req.URL.Path = "/" + strings.TrimPrefix(path, "/")
		req.URL.RawPath = ""
		req = req.WithContext(WithCaller(context.Background(), Caller{Name: HostName, Mgmt: true}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		segs, err := splitPath(req.URL)
		if err != nil {
			if rec.Code != 400 {
				t.Fatalf("%s %q = %d, want 400", method, path, rec.Code)
			}
			return
		}
		if rt, _, _ := match(h.routes, segs, req.Method); rt == nil {
			if rec.Code != 400 {
				t.Fatalf("%s %q = %d, want 400", method, path, rec.Code)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %q body = %q, want {\"Error\":…}", method, path, rec.Body)
			}
		}
	})
}

// FuzzCgroupName: any cgroup file gives a name without '/' or an error.
func FuzzCgroupName(f *testing.F) {
	for _, s := range []string{"0::/\n", "0::/lxc/app\n", "12:name=pantavisor:/lxc/web\n", "0::/lxc/a-1\n", "x:y"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, _ bool) {
		name, host, err := CgroupName(strings.NewReader(in))
		if err != nil || host {
			if name != "" {
				t.Fatalf("CgroupName(%q) = %q, host %v, err %v: want no name", in, name, host, err)
			}
			return
		}
		if name == "" || strings.Contains(name, "/") {
			t.Fatalf("CgroupName(%q) = %q, want a non-empty name without '/'", in, name)
		}
	})
}
