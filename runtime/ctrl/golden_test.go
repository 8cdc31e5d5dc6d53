package ctrl

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the answers")

// fixture backends with fixed answers for the golden tests.
type fixture struct{}

func (fixture) Containers() ([]Container, error) {
	return []Container{
		{Name: "pv-mgmt", Group: "platform", Status: "READY", StatusGoal: "READY", RestartPolicy: "system", Roles: []string{"mgmt"}},
		{Name: "app", Group: "app", Status: "STARTED", StatusGoal: "STARTED", RestartPolicy: "container", Roles: []string{},
			AutoRecovery: &ContainerRecovery{Policy: "on-failure", MaxRetries: 3, CurrentRetries: 1, StableTimeout: 60, IsStable: "false", BackoffPolicy: "reboot"},
			UserStopped:  "false"},
	}, nil
}
func (fixture) ContainerAction(string, string) error { return nil }
func (fixture) Groups() ([]Group, error) {
	return []Group{
		{Name: "data", StatusGoal: "MOUNTED", RestartPolicy: "system", Status: "MOUNTED"},
		{Name: "app", StatusGoal: "STARTED", RestartPolicy: "container", Status: "STARTED",
			AutoRecovery: &GroupRecovery{MaxRetries: 3, StableTimeout: 60, BackoffPolicy: "reboot"}},
	}, nil
}
func (fixture) Signal(string, string, string) error { return nil }

func (fixture) Drivers(platform string) ([]Driver, error) {
	if platform != HostName {
		return nil, nil
	}
	return []Driver{{Name: "wifi", Type: "REQUIRED", Status: "UNKNOWN"}, {Name: "bt", Type: "MANUAL", Status: "UNKNOWN"}}, nil
}
func (fixture) Load(string, string, bool) error { return nil }

func (fixture) XConnectGraph() ([]XConnectLink, error) {
	uid := 1000
	return []XConnectLink{{Consumer: "app", ConsumerPid: 42, Provider: "pv-mgmt", ProviderPid: 7, Name: "dbus",
		Type: "unix", Role: "any", Interface: "/run/dbus/system_bus_socket", Target: "/run/dbus/system_bus_socket",
		Socket: "/run/dbus/system_bus_socket", UID: &uid}}, nil
}
func (fixture) Wakelocks() (Wakelocks, error) {
	return Wakelocks{Mode: "locks", Count: 1, Degraded: true, Held: HeldLocks{Boot: 1}}, nil
}

func (fixture) Legacy() map[string]any {
	return map[string]any{"updater.interval": 60, "debug.ssh": true, "creds.host": "api.pantahub.com"}
}
func (fixture) Entries() []ConfigEntry {
	return []ConfigEntry{{Key: "PV_DEBUG_SSH", Value: "1", Modified: "default"}, {Key: "PV_UPDATER_INTERVAL", Value: "60", Modified: "pv conf file"}}
}

func (fixture) List() []Daemon {
	return []Daemon{{Name: "pv-xconnect", Pid: 12, Respawn: true}}
}
func (fixture) Action(string, string) error { return nil }

type fixtureObjects struct{}

func (fixtureObjects) List() ([]Object, error) {
	return []Object{{Sha: strings.Repeat("ab", 32), Size: 1234}}, nil
}
func (fixtureObjects) Open(string) (io.ReadCloser, error) { return nil, ErrNotFound }
func (fixtureObjects) Put(string, int64, io.Reader) error { return nil }
func (fixtureObjects) GC() (int64, error)                 { return 4096, nil }

type fixtureSteps struct{}

func (fixtureSteps) List() ([]Step, error) {
	// /steps renders dates in local time: the fixture's wall clock is local.
	d := time.Date(2026, 12, 7, 1, 2, 3, 0, time.Local)
	return []Step{
		{Name: "0", Date: d, CommitMsg: "factory \"rev\"", Progress: json.RawMessage(`{"status":"DONE","status-msg":"Update finished","progress":100}`)},
		{Name: "locals/dev", Date: d, Progress: json.RawMessage("not json")},
	}, nil
}
func (fixtureSteps) State(string) ([]byte, error)       { return nil, ErrNotFound }
func (fixtureSteps) Put(string, int64, io.Reader) error { return nil }
func (fixtureSteps) Progress(string) ([]byte, error)    { return nil, ErrNotFound }
func (fixtureSteps) SetCommitMsg(string, []byte) error  { return nil }

// TestGolden pins the JSON answers byte for byte (upstream's shapes, spec
// §5). go test -run Golden -update rewrites testdata/ after a deliberate
// change.
func TestGolden(t *testing.T) {
	f := fixture{}
	h := New(Options{Containers: f, Drivers: f, Extras: f, Config: f, Daemons: f,
		Objects: fixtureObjects{}, Steps: fixtureSteps{}})
	tests := []struct {
		method, path string
		caller       string
		golden       string
	}{
		{"GET", "/containers", HostName, "containers.json"},
		{"GET", "/groups", HostName, "groups.json"},
		{"GET", "/drivers", HostName, "drivers.json"},
		{"GET", "/drivers", "pv-mgmt", "drivers-none.json"},
		{"GET", "/xconnect-graph", HostName, "xconnect-graph.json"},
		{"GET", "/wakelocks", HostName, "wakelocks.json"},
		{"GET", "/config", HostName, "config.json"},
		{"GET", "/config2", HostName, "config2.json"},
		{"GET", "/daemons", HostName, "daemons.json"},
		{"GET", "/objects", HostName, "objects.json"},
		{"GET", "/steps", HostName, "steps.json"},
		{"POST", "/storage/gc", HostName, "storage-gc.json"},
		{"GET", "/nope", HostName, "error-unknown-endpoint.json"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, "http://localhost"+tt.path, nil)
		req = req.WithContext(WithCaller(req.Context(), Caller{Name: tt.caller, Mgmt: true}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s Content-Type = %q, want application/json", tt.method, tt.path, ct)
		}
		path := filepath.Join("testdata", tt.golden)
		if *update {
			if err := os.WriteFile(path, rec.Body.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Body.Bytes(), want) {
			t.Errorf("%s %s =\n%s\nwant (%s)\n%s", tt.method, tt.path, rec.Body, path, want)
		}
	}
}

// TestSecondSurface serves a route table and an identification of its own
// on a real socket: pv-ctrl's routes are not there, access is enforced
// from the table, and the caller is the one Identify gave at accept.
func TestSecondSurface(t *testing.T) {
	var who = Caller{Name: "remote", Mgmt: false}
	h := New(Options{
		Identify: func(net.Conn) (Caller, error) { return who, nil },
		Routes: []Route{
			{Method: "GET", Pattern: "/hello/{}", Access: Anyone, Serve: func(_ *Handler, q *Request) {
				q.JSON(map[string]string{"hello": q.Args()[0], "caller": q.Caller().Name})
			}},
			{Method: "PUT", Pattern: "/admin", Write: true, Access: Mgmt, Limit: 16, Serve: func(_ *Handler, q *Request) { q.OK() }},
		},
	})
	hc, _ := listen(t, h)
	if code, body := call(t, hc, "GET", "/hello/world", ""); code != 200 || body != `{"caller":"remote","hello":"world"}` {
		t.Errorf("GET /hello/world = %d %s", code, body)
	}
	if code, _ := call(t, hc, "PUT", "/admin", ""); code != http.StatusForbidden {
		t.Errorf("PUT /admin as non-mgmt = %d, want 403", code)
	}
	if code, body := call(t, hc, "GET", "/containers", ""); code != 400 || !strings.Contains(body, "unknown endpoint") {
		t.Errorf("GET /containers on the second surface = %d %s, want 400 unknown endpoint", code, body)
	}
	if got := strings.Join(h.Routes(), ","); got != "GET /hello/{},PUT /admin" {
		t.Errorf("Routes() = %s", got)
	}
}
