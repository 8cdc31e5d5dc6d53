package pvrsdk

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebStatic: the embedded page and its files under /app/, / sends
// there, and nothing else of the program is served.
func TestWebStatic(t *testing.T) {
	_, c := startCtrl(t, baseState())
	ts := newServer(t, c, Options{})
	for _, tc := range []struct {
		path, ctype string
		code        int
		want        string
	}{
		{"/app/", "text/html", 200, "<title>Pantavisor device</title>"},
		{"/app/app.js", "javascript", 200, `"/app/api/status"`},
		{"/app/app.css", "text/css", 200, "@media"},
		{"/app/nope.js", "", 404, ""},
		{"/app/web/index.html", "", 404, ""},
		{"/app/../web.go", "", 404, ""},
	} {
		resp, err := http.Get(ts.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.code || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s = %d %s %.60q, want %d %s %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), b, tc.code, tc.ctype, tc.want)
		}
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/", "/app"} {
		resp, err := noRedirect.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/app/" {
			t.Errorf("GET %s = %d to %q, want 302 to /app/", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if code, _ := call(t, "GET", ts.URL+"/elsewhere", nil); code != 404 {
		t.Errorf("GET /elsewhere = %d, want 404", code)
	}
}

// TestWebStatus: the running revision with pv-ctrl's progress and
// containers, as pv-ctrl gives them.
func TestWebStatus(t *testing.T) {
	f, c := startCtrl(t, baseState())
	f.containers = []map[string]any{{"name": "app", "group": "app", "status": "STARTED", "roles": []string{}}}
	ts := newServer(t, c, Options{})
	code, out := call(t, "GET", ts.URL+"/app/api/status", nil)
	var st struct {
		Revision string
		Progress struct {
			Status   string
			Progress int
		}
		Containers []struct{ Name, Status string }
	}
	if code != 200 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status = %d %s", code, out)
	}
	if st.Revision != "0" || st.Progress.Status != "DONE" || st.Progress.Progress != 100 ||
		len(st.Containers) != 1 || st.Containers[0].Name != "app" || st.Containers[0].Status != "STARTED" {
		t.Errorf("status = %s, want revision 0 DONE 100 with app STARTED", out)
	}
	f.mu.Lock()
	f.devMeta["pantavisor.revision"] = "7" // no such step
	f.mu.Unlock()
	if code, out := call(t, "GET", ts.URL+"/app/api/status", nil); code != 404 || !strings.Contains(out, `"error"`) {
		t.Errorf("status of a missing revision = %d %s, want pv-ctrl's 404", code, out)
	}
}

// TestWebStep: the state JSON of the running revision or of ?rev=.
func TestWebStep(t *testing.T) {
	f, c := startCtrl(t, baseState())
	f.steps["locals/x"] = []byte(`{"#spec":"pantavisor-service-system@1"}`)
	ts := newServer(t, c, Options{})
	for _, tc := range []struct {
		q    string
		code int
		want string
	}{
		{"", 200, `"app/run.json":{"name":"app","type":"lxc"}`},
		{"?rev=locals/x", 200, `={"#spec":"pantavisor-service-system@1"}`},
		{"?rev=9", 404, `"error"`},
		{"?rev=../x", 400, `"error"`},
	} {
		code, out := call(t, "GET", ts.URL+"/app/api/step"+tc.q, nil)
		ok := code == tc.code
		if w, exact := strings.CutPrefix(tc.want, "="); exact {
			ok = ok && out == w
		} else {
			ok = ok && strings.Contains(out, tc.want)
		}
		if !ok {
			t.Errorf("step%s = %d %s, want %d %s", tc.q, code, out, tc.code, tc.want)
		}
	}
}

// TestWebLogSources: the sources of a revision's log tree, sorted; none
// when the revision has no logs; names that leave the tree refused.
func TestWebLogSources(t *testing.T) {
	_, c := startCtrl(t, baseState())
	logs := t.TempDir()
	for _, d := range []string{"current/pantavisor", "current/app/lxc", "current/alpha", "3/web"} {
		os.MkdirAll(filepath.Join(logs, d), 0o755)
	}
	os.WriteFile(filepath.Join(logs, "current", "stray.log"), []byte("x"), 0o644)
	ts := newServer(t, c, Options{LogDir: logs})
	for _, tc := range []struct {
		q    string
		code int
		want string
	}{
		{"", 200, `={"rev":"current","sources":["alpha","app","pantavisor"]}`},
		{"?rev=3", 200, `={"rev":"3","sources":["web"]}`},
		{"?rev=4", 200, `={"rev":"4","sources":[]}`},
		{"?rev=../../etc", 400, `"error"`},
	} {
		code, out := call(t, "GET", ts.URL+"/app/api/log-sources"+tc.q, nil)
		ok := code == tc.code
		if w, exact := strings.CutPrefix(tc.want, "="); exact {
			ok = ok && out == w
		} else {
			ok = ok && strings.Contains(out, tc.want)
		}
		if !ok {
			t.Errorf("log-sources%s = %d %s, want %d %s", tc.q, code, out, tc.code, tc.want)
		}
	}
}

// TestCrossOrigin: a write from another site's page (its Origin) is
// refused and changes nothing; the UI's own page, pvr and curl (no
// Origin) are served.
func TestCrossOrigin(t *testing.T) {
	f, c := startCtrl(t, baseState())
	ts := newServer(t, c, Options{})
	post := func(path, origin string) (int, string) {
		req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader("v"))
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, o := range []string{"http://evil.example", "null", "http://" + strings.TrimPrefix(ts.URL, "http://") + ".evil.example"} {
		if code, out := post("/cgi-bin/pvtx/usermeta/save?key=k", o); code != 403 || !strings.Contains(out, "cross-origin") {
			t.Errorf("save from %s = %d %s, want 403", o, code, out)
		}
		if code, _ := post("/cgi-bin/pvtx/begin", o); code != 403 {
			t.Errorf("begin from %s = %d, want 403", o, code)
		}
	}
	f.mu.Lock()
	_, saved := f.userMeta["k"]
	f.mu.Unlock()
	if saved {
		t.Errorf("a refused cross-origin save was written")
	}
	if code, out := call(t, "GET", ts.URL+"/cgi-bin/pvtx/show", nil); code != 400 {
		t.Errorf("show after refused begins = %d %s, want no transaction", code, out)
	}
	for _, o := range []string{"", ts.URL} {
		if code, out := post("/cgi-bin/pvtx/usermeta/save?key=k", o); code != 200 {
			t.Errorf("save with Origin %q = %d %s, want 200", o, code, out)
		}
	}
}
