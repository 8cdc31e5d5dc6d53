package pantavisor

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/hub"
)

// In remote mode the daemon registers with the Hub (factory auto-token),
// saves the credentials, publishes the claim state and posts revision 0.
func TestRemoteRegistersAndPostsFactoryTrail(t *testing.T) {
	testRemote(t, false)
}

// The same, trusting the Hub through PV_LIBTHHTTP_CERTSDIR as upstream's
// libthttp does (the lab's certificate, no test seam).
func TestRemoteTrustsCertsDir(t *testing.T) {
	testRemote(t, true)
}

func testRemote(t *testing.T, certsDir bool) {
	h, err := hub.New(hub.Options{AutoTokens: map[string]string{"factorytok": "user1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	storage := newStorage(t)
	in := start(t, storage, func(o *Options) {
		o.Env = append(o.Env, "PV_CONTROL_REMOTE=1", "PH_CREDS_HOST="+u.Hostname(), "PH_CREDS_PORT="+u.Port(),
			"PH_FACTORY_AUTOTOK=factorytok", "PH_UPDATER_INTERVAL=1")
		if !certsDir {
			o.HubHTTP = srv.Client()
			return
		}
		dir := t.TempDir()
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(filepath.Join(dir, "hub.pem"), pemBytes, 0o644); err != nil {
			t.Fatal(err)
		}
		o.Env = append(o.Env, "PV_LIBTHHTTP_CERTSDIR="+dir)
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, b := in.call(t, "GET", "/device-meta", nil)
		var m map[string]string
		json.Unmarshal(b, &m)
		if code == 200 && m["pantahub.state"] == "idle" && m["pantahub.claimed"] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("device-meta never showed a claimed idle device: %d %s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	id, _ := os.ReadFile(filepath.Join(in.run, "device-id"))

	conf, _ := os.ReadFile(filepath.Join(storage, "config", "pantahub.config"))
	if len(id) == 0 || !strings.Contains(string(conf), "PH_CREDS_ID="+string(id)) {
		t.Errorf("device-id %q, pantahub.config:\n%s", id, conf)
	}
	// user1 sees the trail with revision 0's state.
	hc := srv.Client()
	var tok struct{ Token string }
	resp, err := hc.Post(srv.URL+"/auth/login", "application/json", bytes.NewReader([]byte(`{"username":"user1","password":"user1"}`)))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/trails/"+string(id)+"/steps/0/state", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var state map[string]any
	json.NewDecoder(resp.Body).Decode(&state)
	resp.Body.Close()
	if resp.StatusCode != 200 || state["#spec"] != "pantavisor-service-system@1" {
		t.Errorf("trail state for user1: %d %v", resp.StatusCode, state)
	}
	// Device metadata set locally reaches the Hub.
	if code, b := in.call(t, "PUT", "/device-meta/lab.note", strings.NewReader("hello")); code != 200 {
		t.Fatalf("PUT device-meta: %d %s", code, b)
	}
	for {
		req, _ := http.NewRequest("GET", srv.URL+"/devices/"+string(id)+"/device-meta", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if m["lab.note"] == "hello" && m["pantahub.state"] == "idle" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub's device-meta never got lab.note: %v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The owner's user metadata reaches the local store.
	req, _ = http.NewRequest("PUT", srv.URL+"/devices/"+string(id)+"/user-meta", strings.NewReader(`{"color":"blue"}`))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT user-meta: %v %v", err, resp)
	}
	for {
		code, b := in.call(t, "GET", "/user-meta", nil)
		var m map[string]string
		json.Unmarshal(b, &m)
		if code == 200 && m["color"] == "blue" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("user-meta never reached the device: %d %s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
