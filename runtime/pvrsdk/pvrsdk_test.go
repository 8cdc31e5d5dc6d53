package pvrsdk

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/pvrclient"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
)

var rootfs = []byte("squashfs bytes of app")

func baseState() map[string]any {
	return map[string]any{
		"#spec":                "pantavisor-service-system@1",
		"app/root.squashfs":    sha(rootfs),
		"app/run.json":         map[string]any{"name": "app", "type": "lxc"},
		"network-mapping.json": map[string]any{},
	}
}

func newServer(t *testing.T, c *client.Client, o Options) *httptest.Server {
	t.Helper()
	o.Client = c
	if o.PvtxDir == "" {
		o.PvtxDir = t.TempDir()
	}
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Now = func() time.Time { return time.Unix(1721068626, 0) }
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func call(t *testing.T, method, url string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(data))
}

// TestCloneEditPost: pvr clone, change a _config file, pvr post: the new
// state becomes a local revision named after pvr's rev and is run; the
// object the device has is answered 409 and not uploaded again.
func TestCloneEditPost(t *testing.T) {
	f, c := startCtrl(t, baseState(), rootfs)
	ts := newServer(t, c, Options{})
	dir := t.TempDir()
	ctx := context.Background()
	if err := pvrclient.Clone(ctx, ts.URL+"/cgi-bin/pvr", dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "objects", sha(rootfs)))
	if err != nil || !bytes.Equal(got, rootfs) {
		t.Fatalf("cloned object = %q, %v", got, err)
	}
	if err := pvrclient.Set(dir, "_config/app/etc/app.json", []byte(`{"debug":true}`)); err != nil {
		t.Fatal(err)
	}
	extra := []byte("a new object")
	if err := pvrclient.Set(dir, "app/extra.bin", extra); err != nil {
		t.Fatal(err)
	}
	res, err := pvrclient.Post(ctx, ts.URL+"/cgi-bin/pvr", dir, "local post", 5)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rev != "-1" || res.TrailID != "local" || len(res.StateSha) != 64 {
		t.Errorf("post answer = %s, want rev -1, trail-id local, a state-sha", res.Raw)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.steps["locals/5"]
	if !ok {
		t.Fatalf("steps = %v, want locals/5", keys(f.steps))
	}
	if !strings.Contains(string(st), `"_config/app/etc/app.json":{"debug":true}`) || !strings.Contains(string(st), sha(extra)) {
		t.Errorf("posted state = %s", st)
	}
	if res.StateSha != sha(st) {
		t.Errorf("state-sha = %s, want sha of the stored state %s", res.StateSha, sha(st))
	}
	if f.puts != 1 {
		t.Errorf("object uploads = %d, want 1 (the device has the rootfs)", f.puts)
	}
	if want := []string{"LOCAL_RUN locals/5"}; strings.Join(f.commands, ";") != want[0] {
		t.Errorf("commands = %v, want %v", f.commands, want)
	}
	if f.msgs["locals/5"] != "local post" {
		t.Errorf("commit message = %q", f.msgs["locals/5"])
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestPostNameTaken: a second post with the same rev gets a fresh name.
func TestPostNameTaken(t *testing.T) {
	f, c := startCtrl(t, baseState(), rootfs)
	f.steps["locals/5"] = []byte(`{}`)
	ts := newServer(t, c, Options{})
	body, _ := json.Marshal(map[string]any{"commit-msg": "x", "rev": 5, "state": baseState()})
	code, out := call(t, "POST", ts.URL+"/cgi-bin/pvr/steps", body)
	if code != 200 || !strings.Contains(out, `"revision":"locals/pvr-1721068626-`) {
		t.Fatalf("post = %d %s, want a fresh locals/pvr-<epoch>-<sha8>", code, out)
	}
}

// TestPostMissingObject: a state whose object is not on the device is
// refused with a message naming it, and nothing is written or run.
func TestPostMissingObject(t *testing.T) {
	f, c := startCtrl(t, baseState(), rootfs)
	ts := newServer(t, c, Options{})
	st := baseState()
	missing := sha([]byte("never uploaded"))
	st["app/lib.squashfs"] = missing
	body, _ := json.Marshal(map[string]any{"commit-msg": "x", "rev": 6, "state": st})
	code, out := call(t, "POST", ts.URL+"/cgi-bin/pvr/steps", body)
	if code != 400 || !strings.Contains(out, "app/lib.squashfs ("+missing+")") {
		t.Errorf("post = %d %s, want 400 naming the missing object", code, out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.steps["locals/6"]; ok || len(f.commands) > 0 {
		t.Errorf("steps %v commands %v: want nothing written or run", keys(f.steps), f.commands)
	}
}

// TestPostRefused: pv-ctrl's refusal (a signature that does not verify)
// reaches pvr in the hub's error shape and nothing runs.
func TestPostRefused(t *testing.T) {
	f, c := startCtrl(t, baseState(), rootfs)
	f.refuse = "_sigs/app.json"
	ts := newServer(t, c, Options{})
	st := baseState()
	st["_sigs/app.json"] = map[string]any{"#spec": "pvs@2", "protected": "x", "signature": "y"}
	body, _ := json.Marshal(map[string]any{"commit-msg": "x", "rev": 7, "state": st})
	code, out := call(t, "POST", ts.URL+"/cgi-bin/pvr/steps", body)
	var e struct{ Error string }
	if code != 422 || json.Unmarshal([]byte(out), &e) != nil || !strings.Contains(e.Error, "Secureboot") {
		t.Errorf("post = %d %s, want 422 with pv-ctrl's Secureboot error", code, out)
	}
	if len(f.commands) > 0 {
		t.Errorf("commands = %v, want none", f.commands)
	}
}

// TestObjectUpload: the objects endpoint answers 409 for an object the
// device has, 200 with a put URL otherwise; a wrong body is refused by
// pv-ctrl and not kept; a chunked upload is refused.
func TestObjectUpload(t *testing.T) {
	f, c := startCtrl(t, baseState(), rootfs)
	ts := newServer(t, c, Options{})
	ask := func(b []byte) (int, string) {
		req, _ := json.Marshal(map[string]string{"objectname": "x", "sha256sum": sha(b), "size": "12"})
		return call(t, "POST", ts.URL+"/cgi-bin/pvr/objects/", req)
	}
	if code, out := ask(rootfs); code != 409 {
		t.Errorf("existing object = %d %s, want 409", code, out)
	}
	obj := []byte("new object 1")
	code, out := ask(obj)
	var rec struct {
		PutURL string `json:"signed-puturl"`
	}
	if code != 200 || json.Unmarshal([]byte(out), &rec) != nil || rec.PutURL == "" {
		t.Fatalf("new object = %d %s, want 200 with signed-puturl", code, out)
	}
	if code, out := call(t, "PUT", rec.PutURL, []byte("new object 2")); code != 422 {
		t.Errorf("wrong content = %d %s, want pv-ctrl's 422", code, out)
	}
	req, _ := http.NewRequest("PUT", rec.PutURL, io.MultiReader(bytes.NewReader(obj)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Errorf("chunked upload = %d, want 411", resp.StatusCode)
	}
	if code, out := call(t, "PUT", rec.PutURL, obj); code != 200 {
		t.Errorf("upload = %d %s", code, out)
	}
	if _, ok := f.objects[sha(obj)]; !ok {
		t.Error("object not stored")
	}
	if code, _ := call(t, "POST", ts.URL+"/cgi-bin/pvr/objects/", bytes.Repeat([]byte(" "), maxSmall+1)); code != 413 {
		t.Errorf("oversized object request = %d, want 413", code)
	}
	if code, _ := call(t, "GET", ts.URL+"/cgi-bin/pvr/objects/../../etc/passwd", nil); code == 200 {
		t.Errorf("path escape answered 200")
	}
}

func export(t *testing.T, state map[string]any, members map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	js, _ := json.Marshal(state)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	add("json", js)
	for n, d := range members {
		add(n, d)
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

// TestPvtxSequence: the seeds' pvtx API walk-through, with upstream's
// status codes and bodies.
func TestPvtxSequence(t *testing.T) {
	f, c := startCtrl(t, baseState(), rootfs)
	ts := newServer(t, c, Options{})
	u := ts.URL + "/cgi-bin/pvtx/"
	steps := []struct {
		method, path string
		body         []byte
		code         int
		want         string // substring (or exact when it starts with "=")
	}{
		{"GET", "show", nil, 400, `={"error":"No active transaction.","transaction":null}`},
		{"POST", "abort", nil, 400, `={"error":"No active transaction. Start a transaction first.","transaction":null}`},
		{"POST", "commit", nil, 400, `={"error":"No active transaction. Start a transaction first.","transaction":null}`},
		{"POST", "begin?empty=true", nil, 200, `={"#spec":"pantavisor-service-system@1"}`},
		{"POST", "begin", nil, 400, `"error":"A transaction is already active. Commit or abort it first.","transaction":{"#spec"`},
		{"POST", "abort", nil, 200, `"status":"ok"`},
		{"POST", "begin", nil, 200, `"app/root.squashfs"`},
		{"PUT", "add", export(t, map[string]any{"#spec": "pantavisor-service-system@1", "web/root.squashfs": sha([]byte("web")),
			"web/run.json": map[string]any{"name": "web"}}, map[string][]byte{"objects/" + sha([]byte("web")): []byte("web")}), 200, `"web/run.json":{"name":"web"}`},
		{"PUT", "remove?part=app", nil, 200, `"web/root.squashfs"`},
		{"GET", "show", nil, 200, `"web/run.json"`},
		{"POST", "commit", nil, 200, `{"revision":"locals/pvtx-1721068626-`},
		{"GET", "show", nil, 400, `No active transaction.`},
		{"POST", "run", nil, 400, `"error"`},
		{"POST", "run?rev=../x", nil, 400, `"error"`},
		{"GET", "status", nil, 200, `"rev":"0"`},
		{"GET", "get-config", nil, 200, `"user":{"fleet.channel":"dev"}`},
		{"POST", "usermeta/save?key=newkey", []byte("value of the usermeta"), 200, `"newkey":"value of the usermeta"`},
		{"PUT", "usermeta/delete?key=newkey", nil, 200, `={"fleet.channel":"dev"}`},
		{"POST", "usermeta/save?key=a/b", []byte("v"), 400, `"error"`},
	}
	var rev string
	for _, s := range steps {
		code, out := call(t, s.method, u+s.path, s.body)
		ok := code == s.code
		if w, exact := strings.CutPrefix(s.want, "="); exact {
			ok = ok && out == w
		} else {
			ok = ok && strings.Contains(out, s.want)
		}
		if !ok {
			t.Fatalf("%s %s = %d %s, want %d %s", s.method, s.path, code, out, s.code, s.want)
		}
		if s.path == "commit" && code == 200 {
			var r struct{ Revision string }
			json.Unmarshal([]byte(out), &r)
			rev = r.Revision
		}
	}
	f.mu.Lock()
	st := string(f.steps[rev])
	f.mu.Unlock()
	if !strings.Contains(st, "web/run.json") || strings.Contains(st, "app/") {
		t.Errorf("committed %s = %s, want web without app", rev, st)
	}
	code, out := call(t, "POST", u+"run?rev="+rev, nil)
	if code != 200 || !strings.Contains(out, `"status":"DONE"`) {
		t.Errorf("run = %d %s", code, out)
	}
	code, out = call(t, "GET", u+"status?rev="+rev, nil)
	var status struct {
		Rev      string
		Progress struct{ Status string }
	}
	if code != 200 || json.Unmarshal([]byte(out), &status) != nil || status.Rev != rev || status.Progress.Status != "DONE" {
		t.Errorf("status = %d %s, want rev %s DONE", code, out, rev)
	}
	if f.commands[len(f.commands)-1] != "LOCAL_RUN "+rev {
		t.Errorf("commands = %v", f.commands)
	}
}

// TestPvtxAddBad: a tarball with a ../ member, a bad object or a body
// over the limit is refused and the transaction keeps its state.
func TestPvtxAddBad(t *testing.T) {
	_, c := startCtrl(t, baseState(), rootfs)
	ts := newServer(t, c, Options{MaxPackage: 4096})
	u := ts.URL + "/cgi-bin/pvtx/"
	if code, out := call(t, "POST", u+"begin", nil); code != 200 {
		t.Fatalf("begin = %d %s", code, out)
	}
	_, before := call(t, "GET", u+"show", nil)
	noise := make([]byte, 64<<10) // incompressible: the gzip body is over the limit
	rand.Read(noise)
	st := map[string]any{"#spec": "pantavisor-service-system@1", "evil/run.json": map[string]any{}}
	for name, body := range map[string][]byte{
		"dotdot":    export(t, st, map[string][]byte{"../objects/" + sha([]byte("x")): []byte("x")}),
		"bad sha":   export(t, st, map[string][]byte{"objects/" + sha([]byte("x")): []byte("y")}),
		"too large": export(t, st, map[string][]byte{"objects/" + sha(noise): noise}),
		"not a tar": []byte("hello"),
	} {
		code, out := call(t, "PUT", u+"add", body)
		if code < 400 || !strings.Contains(out, `"error"`) {
			t.Errorf("%s: add = %d %s, want an error", name, code, out)
		}
		if _, now := call(t, "GET", u+"show", nil); now != before {
			t.Errorf("%s: transaction changed to %s", name, now)
		}
	}
}

// TestPvtxBusy: while one pvtx request runs (an upload), another is
// refused at once with a clear error instead of waiting or interleaving.
func TestPvtxBusy(t *testing.T) {
	f, c := startCtrl(t, baseState(), rootfs)
	started := make(chan struct{})
	f.putStarted = started
	ts := newServer(t, c, Options{})
	u := ts.URL + "/cgi-bin/pvtx/"
	if code, out := call(t, "POST", u+"begin?empty=true", nil); code != 200 {
		t.Fatalf("begin = %d %s", code, out)
	}
	big := bytes.Repeat([]byte("z"), 1<<20)
	tb := export(t, map[string]any{"#spec": "pantavisor-service-system@1", "b/root.squashfs": sha(big)}, map[string][]byte{"objects/" + sha(big): big})
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("PUT", u+"add", pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// Send all but the tail: the upload to pv-ctrl is under way.
	go pw.Write(tb[:len(tb)-64])
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("upload did not start")
	}
	code, out := call(t, "POST", u+"begin", nil)
	if code != 409 || !strings.Contains(out, "Another pvtx request is in progress") {
		t.Errorf("concurrent begin = %d %s, want 409", code, out)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF) // the client goes away
	if code := <-done; code == 200 {
		t.Errorf("broken upload answered 200")
	}
	// The server notices the broken body after the client did: poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out := call(t, "GET", u+"show", nil)
		if code == 409 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if code != 200 || out != `{"#spec":"pantavisor-service-system@1"}` {
			t.Errorf("after a broken add show = %d %s, want the state untouched", code, out)
		}
		break
	}
}

// TestLogs: sources, tail, tailn, follow and refused names.
func TestLogs(t *testing.T) {
	_, c := startCtrl(t, baseState())
	logs := t.TempDir()
	pv := filepath.Join(logs, "current", "pantavisor")
	os.MkdirAll(pv, 0o755)
	os.WriteFile(filepath.Join(pv, "pantavisor.log"), []byte("one\ntwo\nthree\n"), 0o644)
	app := filepath.Join(logs, "3", "app", "lxc")
	os.MkdirAll(app, 0o755)
	os.WriteFile(filepath.Join(app, "console.log"), []byte("app line\n"), 0o644)
	ts := newServer(t, c, Options{LogDir: logs, Poll: 10 * time.Millisecond})
	u := ts.URL + "/cgi-bin/logs"
	for _, tc := range []struct {
		q    string
		code int
		want string
	}{
		{"", 200, "one\ntwo\nthree"},
		{"?tail=true&tailn=2", 200, "two\nthree"},
		{"?tailn=1", 200, "one\ntwo\nthree"}, // tailn only with tail
		{"?rev=3&source=app", 200, "app line"},
		{"?rev=3&source=..", 400, "source"},
		{"?rev=../../etc", 400, "rev"},
		{"?source=nope", 404, "no logs"},
		{"?tail=maybe", 400, "tail"},
	} {
		code, out := call(t, "GET", u+tc.q, nil)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("logs%s = %d %q, want %d %q", tc.q, code, out, tc.code, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u+"?tail=true&follow=true&tailn=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	fh, _ := os.OpenFile(filepath.Join(pv, "pantavisor.log"), os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString("four\n")
	fh.Close()
	var got []byte
	buf := make([]byte, 64)
	for !bytes.Contains(got, []byte("four\n")) {
		n, err := resp.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("follow read %q: %v", got, err)
		}
	}
	if string(got) != "three\nfour\n" {
		t.Errorf("follow = %q, want the last line then the new one", got)
	}
}

// TestOpenToLAN: the README's way to open the port from the device with
// busybox wget (POST only): begin, add a state fragment with the config
// key, commit, run.
func TestOpenToLAN(t *testing.T) {
	f, c := startCtrl(t, baseState(), rootfs)
	ts := newServer(t, c, Options{})
	u := ts.URL + "/cgi-bin/pvtx/"
	cfg := `{"_config/pvr-sdk/etc/pvr-sdk/config.json":{"httpd":{"listen":"0.0.0.0","port":"12368"}}}`
	for _, s := range []struct{ path, body string }{{"begin", ""}, {"add", cfg}} {
		if code, out := call(t, "POST", u+s.path, []byte(s.body)); code != 200 {
			t.Fatalf("POST %s = %d %s", s.path, code, out)
		}
	}
	code, out := call(t, "POST", u+"commit", nil)
	var r struct{ Revision string }
	if code != 200 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("commit = %d %s", code, out)
	}
	if code, out := call(t, "POST", u+"run?rev="+r.Revision, nil); code != 200 {
		t.Fatalf("run = %d %s", code, out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := string(f.steps[r.Revision]); !strings.Contains(st, `"_config/pvr-sdk/etc/pvr-sdk/config.json":{"httpd":{"listen":"0.0.0.0","port":"12368"}}`) || !strings.Contains(st, `"app/run.json"`) {
		t.Errorf("state = %s, want the running state plus the config", st)
	}
}
