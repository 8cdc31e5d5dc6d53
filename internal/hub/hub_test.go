package hub

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

type tclient struct {
	t   *testing.T
	url string
	tok string
}

func (c *tclient) do(method, p string, hdr map[string]string, body any, out any) *http.Response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	u := p
	if !strings.HasPrefix(p, "http") {
		u = c.url + p
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("User-Agent", "hubtest")
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, p, resp.StatusCode, b, err)
		}
	}
	return resp
}

func newHub(t *testing.T, o Options) (*Server, string) {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func login(t *testing.T, u, user, pass string) *tclient {
	c := &tclient{t: t, url: u}
	var out struct{ Token string }
	if r := c.do("POST", "/auth/login", nil, map[string]string{"username": user, "password": pass}, &out); r.StatusCode != 200 {
		t.Fatalf("login %s: %d", user, r.StatusCode)
	}
	c.tok = out.Token
	return c
}

type devOut struct {
	ID, PRN, Owner, Challenge, Secret, Nick string
}

func register(t *testing.T, u string, hdr map[string]string) (devOut, *tclient) {
	anon := &tclient{t: t, url: u}
	var d devOut
	if r := anon.do("POST", "/devices/", hdr, map[string]string{"secret": "s3cret"}, &d); r.StatusCode != 200 {
		t.Fatalf("register: %d", r.StatusCode)
	}
	return d, login(t, u, d.PRN, "s3cret")
}

func TestRegisterNeedsUserAgentAndSecret(t *testing.T) {
	_, u := newHub(t, Options{})
	req, _ := http.NewRequest("POST", u+"/devices/", strings.NewReader(`{"secret":"x"}`))
	req.Header["User-Agent"] = []string{""} // Go would send its own
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("no User-Agent: %d, want 403", resp.StatusCode)
	}
	c := &tclient{t: t, url: u}
	if r := c.do("POST", "/devices/", nil, map[string]string{}, nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("no secret: %d, want 400", r.StatusCode)
	}
}

func TestRegisterShapesAndClaim(t *testing.T) {
	_, u := newHub(t, Options{})
	d, dev := register(t, u, nil)
	if d.PRN != "prn:::devices:/"+d.ID || d.Owner != "" || len(strings.Split(d.Challenge, "-")) != 3 || !strings.HasPrefix(d.Nick, "__unregistered__") {
		t.Fatalf("unclaimed device = %+v", d)
	}
	user := login(t, u, "user1", "user1")
	if r := user.do("GET", "/devices/"+d.ID, nil, nil, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("a stranger reads the device: %d", r.StatusCode)
	}
	if r := dev.do("PUT", "/devices/"+d.ID+"?challenge="+d.Challenge, nil, nil, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("a device claims itself: %d", r.StatusCode)
	}
	if r := user.do("PUT", "/devices/"+d.ID+"?challenge="+d.Challenge, nil, nil, nil); r.StatusCode != 200 {
		t.Fatalf("claim: %d", r.StatusCode)
	}
	var got devOut
	dev.do("GET", "/devices/"+d.ID, nil, nil, &got)
	if got.Owner != "prn:pantahub.com:auth:/user1" || got.Challenge != "" || got.Secret != "" {
		t.Errorf("claimed device = %+v", got)
	}
	if r := user.do("PUT", "/devices/"+d.ID+"?challenge="+d.Challenge, nil, nil, nil); r.StatusCode != http.StatusConflict {
		t.Errorf("second claim: %d, want 409", r.StatusCode)
	}
}

func TestAutoTokenMadeByUser(t *testing.T) {
	_, u := newHub(t, Options{})
	user := login(t, u, "user3", "user3")
	var tok struct{ Token string }
	user.do("POST", "/devices/tokens", nil, map[string]any{"default-user-meta": map[string]string{"fleet": "a"}}, &tok)
	d, dev := register(t, u, map[string]string{"Pantahub-Devices-Auto-Token-V1": tok.Token})
	if d.Owner != "prn:pantahub.com:auth:/user3" || d.Challenge != "" {
		t.Fatalf("auto-token device = %+v", d)
	}
	var um map[string]any
	dev.do("GET", "/devices/"+d.ID+"/user-meta", nil, nil, &um)
	if um["fleet"] != "a" {
		t.Errorf("user-meta = %v, want the token's defaults", um)
	}
	anon := &tclient{t: t, url: u}
	if r := anon.do("POST", "/devices/", map[string]string{"Pantahub-Devices-Auto-Token-V1": "bogus"}, map[string]string{"secret": "x"}, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("bogus auto-token: %d, want 401", r.StatusCode)
	}
}

func TestTokensRejected(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, u := newHub(t, Options{Now: func() time.Time { return now }, TokenTTL: time.Minute})
	d, dev := register(t, u, nil)
	path := "/devices/" + d.ID
	// alg "none" with the same claims, and a token signed by another key.
	parts := strings.Split(dev.tok, ".")
	none := b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	other, _ := New(Options{})
	forged, _ := signRS256(other.key, Claims{PRN: d.PRN, Type: "DEVICE", Exp: now.Add(time.Hour).Unix()})
	for name, tok := range map[string]string{"none": none, "other key": forged, "garbage": "a.b.c", "empty": ""} {
		c := &tclient{t: t, url: u, tok: tok}
		r := c.do("GET", path, nil, nil, nil)
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `realm="pantahub services"`) {
			t.Errorf("%s token: %d %q", name, r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	}
	// Refresh keeps the claims; an expired token is refused.
	var ref struct{ Token string }
	if r := dev.do("GET", "/auth/login", nil, nil, &ref); r.StatusCode != 200 || ref.Token == "" {
		t.Fatalf("refresh: %d", r.StatusCode)
	}
	now = now.Add(2 * time.Minute)
	if r := dev.do("GET", path, nil, nil, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired token: %d", r.StatusCode)
	}
	_ = s
}

func TestDeviceMetaPutAndPatch(t *testing.T) {
	_, u := newHub(t, Options{})
	d, dev := register(t, u, nil)
	p := "/devices/" + d.ID + "/device-meta"
	var m map[string]any
	// PUT replaces the whole set; an escaped dot is stored as a dot.
	dev.do("PUT", p, nil, map[string]any{"pantahub\uff0eclaimed": "0", "a": "1"}, &m)
	m = nil
	dev.do("PUT", p, nil, map[string]any{"pantahub\uff0eclaimed": "1"}, &m)
	if len(m) != 1 || m["pantahub.claimed"] != "1" {
		t.Errorf("after PUT: %v", m)
	}
	// PATCH (mocker): dotted keys as they are, merge, null deletes.
	m = nil
	if r := dev.do("PATCH", p, nil, map[string]any{"pantavisor.arch": "arm", "pantahub.claimed": nil}, &m); r.StatusCode != 200 {
		t.Fatalf("PATCH: %d", r.StatusCode)
	}
	if len(m) != 1 || m["pantavisor.arch"] != "arm" {
		t.Errorf("after PATCH: %v", m)
	}
	// Conditional reads: the same set is a 304 without a body.
	r := dev.do("GET", p, nil, nil, nil)
	etag := r.Header.Get("ETag")
	if r := dev.do("GET", p, map[string]string{"If-None-Match": etag}, nil, nil); etag == "" || r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %q: %d, want 304", etag, r.StatusCode)
	}
	dev.do("PATCH", p, nil, map[string]any{"k": "v"}, nil)
	if r := dev.do("GET", p, map[string]string{"If-None-Match": etag}, nil, nil); r.StatusCode != 200 {
		t.Errorf("changed set with the old ETag: %d, want 200", r.StatusCode)
	}
	user := login(t, u, "user1", "user1")
	if r := user.do("PUT", p, nil, map[string]any{"x": "y"}, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("a stranger writes device-meta: %d", r.StatusCode)
	}
	if r := dev.do("PUT", "/devices/"+d.ID+"/user-meta", nil, map[string]any{"x": "y"}, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("the device writes its user-meta: %d", r.StatusCode)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestObjectsTrailsSteps(t *testing.T) {
	_, u := newHub(t, Options{AutoTokens: map[string]string{"tok": "user1"}})
	d, dev := register(t, u, map[string]string{"Pantahub-Devices-Auto-Token-V1": "tok"})
	blob := []byte("root filesystem bytes")
	req := map[string]string{"objectname": "root.squashfs", "sha256sum": sha(blob), "size": "21"}
	var put struct {
		URL string `json:"signed-puturl"`
	}
	if r := dev.do("POST", "/objects/", nil, req, &put); r.StatusCode != 200 || put.URL == "" {
		t.Fatalf("POST object: %d", r.StatusCode)
	}
	if r := dev.do("PUT", put.URL, nil, []byte("other bytes"), nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("upload with the wrong sha: %d, want 400", r.StatusCode)
	}
	if r := dev.do("GET", put.URL, nil, nil, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("GET with a PUT url: %d, want 403", r.StatusCode)
	}
	if r := dev.do("PUT", put.URL, nil, blob, nil); r.StatusCode != 200 {
		t.Fatalf("upload: %d", r.StatusCode)
	}
	r := dev.do("POST", "/objects/", nil, req, nil)
	if r.StatusCode != http.StatusConflict || r.Header.Get("Pantahub-Object-Type") != "object" {
		t.Errorf("existing object: %d %q, want 409 object", r.StatusCode, r.Header.Get("Pantahub-Object-Type"))
	}
	var get struct {
		URL  string `json:"signed-geturl"`
		Size string `json:"size"`
	}
	dev.do("GET", "/objects/"+sha(blob), nil, nil, &get)
	gr, _ := http.NewRequest("GET", get.URL, nil)
	gr.Header.Set("Range", "bytes=5-")
	resp, err := http.DefaultClient.Do(gr)
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if get.Size != "21" || resp.StatusCode != http.StatusPartialContent || string(tail) != string(blob[5:]) {
		t.Errorf("ranged download: size %q, %d %q", get.Size, resp.StatusCode, tail)
	}

	state := map[string]any{"#spec": "pantavisor-service-system@1", "app/root.squashfs": sha(blob)}
	if r := dev.do("POST", "/trails/", nil, state, nil); r.StatusCode != 200 {
		t.Fatalf("POST trail: %d", r.StatusCode)
	}
	if r := dev.do("POST", "/trails/", nil, state, nil); r.StatusCode != http.StatusConflict {
		t.Errorf("second trail: %d, want 409", r.StatusCode)
	}
	user := login(t, u, "user1", "user1")
	state["app/x.json"] = map[string]any{"a": 1}
	var st struct {
		Rev      int    `json:"rev"`
		StateSHA string `json:"state-sha"`
	}
	if r := user.do("POST", "/trails/"+d.ID+"/steps", nil, map[string]any{"rev": 1, "commit-msg": "up", "state": state}, &st); r.StatusCode != 200 || st.Rev != 1 || len(st.StateSHA) != 64 {
		t.Fatalf("POST step: %d %+v", r.StatusCode, st)
	}
	in := url.QueryEscape(`{"$in":["NEW","DOWNLOADING","INPROGRESS","TESTING","QUEUED"]}`)
	var steps []struct {
		Rev      int
		Progress Progress
	}
	dev.do("GET", "/trails/"+d.ID+"/steps?progress.status="+in, nil, nil, &steps)
	if len(steps) != 1 || steps[0].Rev != 1 || steps[0].Progress.Status != "NEW" {
		t.Fatalf("pending steps = %+v", steps)
	}
	var echo Progress
	if r := dev.do("PUT", "/trails/"+d.ID+"/steps/1/progress", nil, Progress{Status: "DOWNLOADING", Progress: 10}, &echo); r.StatusCode != 200 || echo.Status != "DOWNLOADING" {
		t.Fatalf("progress: %d %+v", r.StatusCode, echo)
	}
	if r := user.do("PUT", "/trails/"+d.ID+"/steps/1/progress", nil, Progress{Status: "DONE"}, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("the user writes progress: %d", r.StatusCode)
	}
	steps = nil
	dev.do("GET", "/trails/"+d.ID+"/steps", nil, nil, &steps)
	if len(steps) != 0 {
		t.Errorf("default filter (NEW) = %+v", steps)
	}
}

// A steps poll with the last ETag costs a 304 while the list is
// unchanged, and a full answer once it changes.
func TestStepsConditional(t *testing.T) {
	_, u := newHub(t, Options{AutoTokens: map[string]string{"tok": "user1"}})
	d, dev := register(t, u, map[string]string{"Pantahub-Devices-Auto-Token-V1": "tok"})
	state := map[string]any{"#spec": "pantavisor-service-system@1"}
	if r := dev.do("POST", "/trails/", nil, state, nil); r.StatusCode != 200 {
		t.Fatalf("POST trail: %d", r.StatusCode)
	}
	r := dev.do("GET", "/trails/"+d.ID+"/steps", nil, nil, nil)
	etag := r.Header.Get("ETag")
	if r.StatusCode != 200 || etag == "" {
		t.Fatalf("steps: %d, ETag %q", r.StatusCode, etag)
	}
	if r := dev.do("GET", "/trails/"+d.ID+"/steps", map[string]string{"If-None-Match": etag}, nil, nil); r.StatusCode != http.StatusNotModified {
		t.Errorf("unchanged steps: %d, want 304", r.StatusCode)
	}
	user := login(t, u, "user1", "user1")
	if r := user.do("POST", "/trails/"+d.ID+"/steps", nil, map[string]any{"rev": 1, "state": state}, nil); r.StatusCode != 200 {
		t.Fatalf("POST step: %d", r.StatusCode)
	}
	var steps []struct{ Rev int }
	if r := dev.do("GET", "/trails/"+d.ID+"/steps", map[string]string{"If-None-Match": etag}, nil, &steps); r.StatusCode != 200 || len(steps) != 1 {
		t.Errorf("changed steps: %d %+v, want 200 with rev 1", r.StatusCode, steps)
	}
}

// BlobBytesServed counts the bytes of signed downloads, ranges included.
func TestBlobBytesServed(t *testing.T) {
	s, u := newHub(t, Options{AutoTokens: map[string]string{"tok": "user1"}})
	_, dev := register(t, u, map[string]string{"Pantahub-Devices-Auto-Token-V1": "tok"})
	blob := bytes.Repeat([]byte("x"), 1000)
	var put struct {
		URL string `json:"signed-puturl"`
	}
	dev.do("POST", "/objects/", nil, map[string]string{"objectname": "b", "sha256sum": sha(blob), "size": "1000"}, &put)
	if r := dev.do("PUT", put.URL, nil, blob, nil); r.StatusCode != 200 {
		t.Fatalf("upload: %d", r.StatusCode)
	}
	var get struct {
		URL string `json:"signed-geturl"`
	}
	dev.do("GET", "/objects/"+sha(blob), nil, nil, &get)
	dev.do("GET", get.URL, map[string]string{"Range": "bytes=900-"}, nil, nil)
	dev.do("GET", get.URL, nil, nil, nil)
	if got := s.Stats().BlobBytesServed; got != 1100 {
		t.Errorf("BlobBytesServed = %d, want 1100", got)
	}
}

// The pvr side: .pvrremote points at the last step; objects go through the
// step's objects endpoint; a post answers rev as a number and state-sha.
func TestPvrRemote(t *testing.T) {
	_, u := newHub(t, Options{AutoTokens: map[string]string{"tok": "user1"}})
	d, dev := register(t, u, map[string]string{"Pantahub-Devices-Auto-Token-V1": "tok"})
	dev.do("POST", "/trails/", nil, map[string]any{"#spec": "pantavisor-service-system@1"}, nil)
	user := login(t, u, "user1", "user1")
	var rm map[string]any
	if r := user.do("GET", "/trails/"+d.ID+"/.pvrremote", nil, nil, &rm); r.StatusCode != 200 {
		t.Fatalf(".pvrremote: %d", r.StatusCode)
	}
	step0 := u + "/trails/" + d.ID + "/steps/0"
	if rm["json-get-url"] != step0+"/state" || rm["objects-endpoint"] != step0+"/objects" || rm["post-url"] != u+"/trails/"+d.ID+"/steps" || rm["json-key"] != "state" {
		t.Errorf(".pvrremote = %v", rm)
	}
	blob := []byte("app")
	var put struct {
		URL string `json:"signed-puturl"`
	}
	user.do("POST", step0+"/objects/", nil, map[string]string{"objectname": "a", "sha256sum": sha(blob), "size": "3"}, &put)
	if r := user.do("PUT", put.URL, nil, blob, nil); r.StatusCode != 200 {
		t.Fatalf("upload: %d", r.StatusCode)
	}
	var get struct {
		URL string `json:"signed-geturl"`
	}
	if r := user.do("GET", step0+"/objects/"+sha(blob), nil, nil, &get); r.StatusCode != 200 || get.URL == "" {
		t.Errorf("step object: %d", r.StatusCode)
	}
	var res map[string]any
	user.do("POST", "/trails/"+d.ID+"/steps", nil, map[string]any{"commit-msg": "m", "rev": 1, "state": map[string]any{"a": sha(blob)}}, &res)
	if res["rev"] != float64(1) || res["trail-id"] != d.ID || res["state-sha"] == "" {
		t.Errorf("post answer = %v", res)
	}
	if r := user.do("GET", "/trails/"+d.ID+"/steps/5/.pvrremote", nil, nil, nil); r.StatusCode != http.StatusNotFound {
		t.Errorf(".pvrremote of a missing step: %d", r.StatusCode)
	}
	stranger := login(t, u, "user2", "user2")
	if r := stranger.do("GET", "/trails/"+d.ID+"/.pvrremote", nil, nil, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("a stranger's .pvrremote: %d", r.StatusCode)
	}
}

func FuzzVerifyToken(f *testing.F) {
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := signRS256(s.key, Claims{PRN: "p", Exp: 1})
	f.Add(good)
	f.Add("a.b.c")
	f.Add(strings.Repeat(".", 5))
	f.Fuzz(func(t *testing.T, tok string) {
		var c Claims
		if verifyRS256(&s.key.PublicKey, tok, &c) == nil && tok != good {
			// Another encoding of the same signed input is fine; anything
			// else verifying means a forgery.
			in, _, _ := splitJWT(tok, "RS256")
			gin, _, _ := splitJWT(good, "RS256")
			if in != gin {
				t.Fatalf("forged token verified: %q", tok)
			}
		}
		var bc blobClaims
		verifyHS256(s.blobKey, tok, &bc)
	})
}
