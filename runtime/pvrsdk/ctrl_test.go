package pvrsdk

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
)

// fakeCtrl is a pv-ctrl for handler tests: the endpoints pvr-sdk calls,
// with pv-ctrl's checks that matter here (object checksums, upstream's
// error shape). The App Engine suites run the real one.
type fakeCtrl struct {
	mu       sync.Mutex
	objects  map[string][]byte
	steps    map[string][]byte // "current", "locals/<n>"
	msgs     map[string]string
	commands []string
	userMeta map[string]string
	devMeta  map[string]string
	puts     int // object uploads
	// refuse makes PUT /steps refuse states holding this key (pv-ctrl's
	// signature check).
	refuse string
	// containers is the answer of GET /containers.
	containers []map[string]any
	// progress scripts the progress answers of local revisions (a run
	// the web UI watches): "INPROGRESS" or "FAIL" (pv-ctrl answers 500,
	// as while Pantavisor restarts), one per request; then DONE.
	progress []string
	// putStarted is closed when an object upload starts (once).
	putStarted chan struct{}
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func ctrlErr(w http.ResponseWriter, code int, msg string) {
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"Error": msg})
}

func (f *fakeCtrl) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/objects/"):
		s := strings.TrimPrefix(p, "/objects/")
		if r.Method == "PUT" {
			f.mu.Lock()
			if f.putStarted != nil {
				close(f.putStarted)
				f.putStarted = nil
			}
			f.mu.Unlock()
			data, err := io.ReadAll(r.Body)
			if err != nil || int64(len(data)) != r.ContentLength {
				ctrlErr(w, 400, "short body")
				return
			}
			if sha(data) != s {
				ctrlErr(w, 422, "Object has bad checksum")
				return
			}
			f.mu.Lock()
			f.objects[s] = data
			f.puts++
			f.mu.Unlock()
			return
		}
		f.mu.Lock()
		data, ok := f.objects[s]
		f.mu.Unlock()
		if !ok {
			// pv-ctrl's answer to a missing object (upstream's).
			ctrlErr(w, 400, "Request has bad object name")
			return
		}
		// pv-ctrl streams objects without a Content-Length.
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		w.Write(data)
	case strings.HasSuffix(p, "/commitmsg"):
		rev := strings.TrimSuffix(strings.TrimPrefix(p, "/steps/"), "/commitmsg")
		data, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.msgs[rev] = string(data)
		f.mu.Unlock()
	case strings.HasSuffix(p, "/progress"):
		rev := strings.TrimSuffix(strings.TrimPrefix(p, "/steps/"), "/progress")
		f.mu.Lock()
		_, ok := f.steps[rev]
		next := ""
		if strings.HasPrefix(rev, "locals/") && len(f.progress) > 0 {
			next, f.progress = f.progress[0], f.progress[1:]
		}
		f.mu.Unlock()
		if !ok {
			ctrlErr(w, 404, "revision not found")
			return
		}
		switch next {
		case "INPROGRESS":
			io.WriteString(w, `{"status":"INPROGRESS","status-msg":"Starting updated version","progress":50}`)
			return
		case "FAIL":
			ctrlErr(w, 500, "restarting")
			return
		}
		io.WriteString(w, `{"status":"DONE","status-msg":"Update finished, revision set as rollback point","progress":100}`)
	case strings.HasPrefix(p, "/steps/"):
		rev := strings.TrimPrefix(p, "/steps/")
		if r.Method == "PUT" {
			data, _ := io.ReadAll(r.Body)
			var st map[string]json.RawMessage
			if json.Unmarshal(data, &st) != nil {
				ctrlErr(w, 400, "Parser: bad state")
				return
			}
			if _, bad := st[f.refuse]; f.refuse != "" && bad {
				ctrlErr(w, 422, "Secureboot: signature of "+f.refuse+" does not verify")
				return
			}
			f.mu.Lock()
			f.steps[rev] = data
			f.mu.Unlock()
			return
		}
		f.mu.Lock()
		data, ok := f.steps[rev]
		f.mu.Unlock()
		if !ok {
			ctrlErr(w, 404, "revision not found")
			return
		}
		w.Write(data)
	case p == "/objects":
		var list []map[string]string
		f.mu.Lock()
		for k, v := range f.objects {
			list = append(list, map[string]string{"sha256": k, "size": fmt.Sprint(len(v))})
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(list)
	case p == "/containers":
		f.mu.Lock()
		list := f.containers
		f.mu.Unlock()
		if list == nil {
			list = []map[string]any{}
		}
		json.NewEncoder(w).Encode(list)
	case p == "/commands":
		var c struct{ Op, Payload string }
		json.NewDecoder(r.Body).Decode(&c)
		f.mu.Lock()
		f.commands = append(f.commands, c.Op+" "+c.Payload)
		f.mu.Unlock()
	case p == "/user-meta" || p == "/device-meta":
		m := f.userMeta
		if p == "/device-meta" {
			m = f.devMeta
		}
		f.mu.Lock()
		json.NewEncoder(w).Encode(m)
		f.mu.Unlock()
	case strings.HasPrefix(p, "/user-meta/"):
		k := strings.TrimPrefix(p, "/user-meta/")
		data, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		if r.Method == "DELETE" {
			delete(f.userMeta, k)
		} else {
			f.userMeta[k] = string(data)
		}
		f.mu.Unlock()
	default:
		ctrlErr(w, 404, "no such endpoint")
	}
}

// startCtrl serves a fake pv-ctrl on a unix socket and returns it with a
// client for it.
func startCtrl(t *testing.T, current map[string]any, objs ...[]byte) (*fakeCtrl, *client.Client) {
	t.Helper()
	f := &fakeCtrl{objects: map[string][]byte{}, steps: map[string][]byte{}, msgs: map[string]string{},
		userMeta: map[string]string{"fleet.channel": "dev"}, devMeta: map[string]string{"pantavisor.revision": "0"}}
	for _, o := range objs {
		f.objects[sha(o)] = o
	}
	data, _ := json.Marshal(current)
	f.steps["current"] = data
	f.steps["0"] = data
	dir, err := os.MkdirTemp("", "pvrsdk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "pv-ctrl")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f, client.New(sock)
}
