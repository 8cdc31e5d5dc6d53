package remote

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/metadata"
)

// While an object download hangs, the idle loop keeps its metadata work:
// user metadata changed on the Hub reaches the device; once the download
// goes on, the update ends DONE.
func TestDownloadDoesNotBlockMetadata(t *testing.T) {
	release := make(chan struct{})
	var blocked atomic.Bool
	ul := newUpdateLab(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/local-s3/") {
				blocked.Store(true)
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	ul.stop()
	var mark atomic.Value
	c := ul.client(map[string]string{"PH_FACTORY_AUTOTOK": "factorytok"})
	c.o.Updates = ul.upd
	c.o.UserMeta = func(kvs []metadata.KV) error {
		for _, kv := range kvs {
			if kv.Key == "mark" {
				mark.Store(string(kv.Value))
			}
		}
		return nil
	}
	curClient.Store(c)
	ul.run(c)
	ul.post(bytes.Repeat([]byte("slow root "), 1000))
	ul.await("the download to hang", blocked.Load)
	if code := ul.user("PUT", "/devices/"+ul.id+"/user-meta", map[string]string{"mark": "during"}, nil); code != 200 {
		t.Fatalf("PUT user-meta: %d", code)
	}
	ul.await("user-meta pulled during the download", func() bool { v, _ := mark.Load().(string); return v == "during" })
	close(release)
	ul.await("DONE on the hub", func() bool { return ul.hubStatus() == "DONE" })
}

// A download that does not fit (the daemon's OpenPartial refuses it) ends
// WONTGO with its message, and nothing is staged.
func TestNoSpaceIsWontGo(t *testing.T) {
	ul := newUpdateLab(t, nil)
	ul.upd.mu.Lock()
	ul.upd.noSpace = true
	ul.upd.mu.Unlock()
	content := bytes.Repeat([]byte("big root "), 1000)
	ul.post(content)
	ul.await("WONTGO on the hub", func() bool { return ul.hubStatus() == "WONTGO" })
	var st struct {
		Progress struct {
			Msg string `json:"status-msg"`
		} `json:"progress"`
	}
	ul.user("GET", "/trails/"+ul.id+"/steps/1", nil, &st)
	if want := fmt.Sprintf("Space required %d B, available 10 B", len(content)); st.Progress.Msg != want {
		t.Errorf("status-msg %q, want %q", st.Progress.Msg, want)
	}
	if staged, _, _ := ul.upd.counts(); staged != 0 {
		t.Errorf("staged %d", staged)
	}
}

// An update larger than the free space is refused before any download:
// WONTGO with upstream's message, no partial opened, no blob byte served,
// no DOWNLOADING progress.
func TestUpfrontSpaceCheck(t *testing.T) {
	ul := newUpdateLab(t, nil)
	ul.upd.mu.Lock()
	ul.upd.free = 100
	ul.upd.mu.Unlock()
	content := bytes.Repeat([]byte("big root "), 1000)
	ul.post(content)
	ul.await("WONTGO on the hub", func() bool { return ul.hubStatus() == "WONTGO" })
	var st struct {
		Progress struct {
			Msg       string         `json:"status-msg"`
			Downloads map[string]any `json:"downloads"`
		} `json:"progress"`
	}
	ul.user("GET", "/trails/"+ul.id+"/steps/1", nil, &st)
	if want := fmt.Sprintf("Space required %d B, available 100 B", len(content)); st.Progress.Msg != want {
		t.Errorf("status-msg %q, want %q", st.Progress.Msg, want)
	}
	ul.upd.mu.Lock()
	opened := ul.upd.opened
	ul.upd.mu.Unlock()
	if opened != 0 {
		t.Errorf("%d partial downloads opened, want none", opened)
	}
	if n := ul.hub.Stats().BlobBytesServed; n != 0 {
		t.Errorf("%d object bytes served, want none", n)
	}
	if staged, _, _ := ul.upd.counts(); staged != 0 {
		t.Errorf("staged %d", staged)
	}
}
