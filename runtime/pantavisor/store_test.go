package pantavisor

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPutStepInUse: PUT /steps/locals/<rev> of a revision running,
// tried or committed answers 409 and changes nothing; one only uploaded
// may be uploaded again (issue 11, defect 5: it answered 200 and
// replaced the tried revision's JSON and progress).
func TestPutStepInUse(t *testing.T) {
	other := `{"#spec":"pantavisor-service-system@1","README.md":"` + strings.Repeat("a", 64) + `"}`
	t.Run("try", func(t *testing.T) {
		dir := tryingStorage(t)
		in := startTrying(t, dir)
		got, b := in.call(t, "PUT", "/steps/"+tryRev, strings.NewReader(other))
		if got != 409 || !strings.Contains(string(b), "immutable") {
			t.Errorf("PUT /steps/%s (running, tried) = %d %s, want 409 immutable", tryRev, got, b)
		}
		if _, b := in.call(t, "GET", "/steps/"+tryRev, nil); string(b) != emptyState {
			t.Errorf("state of %s after a refused PUT = %s, want it unchanged", tryRev, b)
		}
		if _, b := in.call(t, "GET", "/steps/"+tryRev+"/progress", nil); strings.Contains(string(b), `"NEW"`) {
			t.Errorf("progress of %s after a refused PUT = %s, want the try's", tryRev, b)
		}
		for range 2 { // only uploaded: may be replaced
			if got, b := in.call(t, "PUT", "/steps/locals/new", strings.NewReader(other)); got != 200 {
				t.Errorf("PUT /steps/locals/new = %d %s, want 200", got, b)
			}
		}
	})
	t.Run("running without updater", func(t *testing.T) {
		dir := newStorage(t)
		st := filepath.Join(dir, "trails", "locals", "run", ".pvr")
		if err := os.MkdirAll(st, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(st, "json"), []byte(emptyState), 0o644); err != nil {
			t.Fatal(err)
		}
		in := start(t, dir, func(o *Options) { o.Cmdline = "pv_rev=locals/run pv_appengine" })
		if got, b := in.call(t, "PUT", "/steps/locals/run", strings.NewReader(other)); got != 409 {
			t.Errorf("PUT /steps/locals/run (running) = %d %s, want 409", got, b)
		}
		if _, b := in.call(t, "GET", "/steps/locals/run", nil); string(b) != emptyState {
			t.Errorf("state after a refused PUT = %s, want it unchanged", b)
		}
	})
}

// TestPutStepTooLarge: a state over maxStateJSON is refused with 413,
// declared or not, and leaves nothing behind.
func TestPutStepTooLarge(t *testing.T) {
	dir := newStorage(t)
	in := start(t, dir, nil)
	big := `{"#spec":"pantavisor-service-system@1","x.json":"` + strings.Repeat("x", maxStateJSON) + `"}`
	if got, b := in.call(t, "PUT", "/steps/locals/big", strings.NewReader(big)); got != 413 {
		t.Errorf("PUT /steps/locals/big (%d B) = %d %s, want 413", len(big), got, b)
	}
	// Without a Content-Length the limit shows while reading.
	req, _ := http.NewRequest("PUT", "http://localhost/steps/locals/big", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	resp, err := in.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked PUT /steps/locals/big = %d, want 413", resp.StatusCode)
	}
	if got, _ := in.call(t, "GET", "/steps/locals/big", nil); got != 404 {
		t.Errorf("GET /steps/locals/big after 413 = %d, want 404", got)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "trails"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("trails/%s left by a refused upload", e.Name())
		}
	}
}

// TestBootRemovesTemporaries: a temp object left by a power cut is gone
// once the daemon is up (issue 11, defect 8: GC kept it 10 minutes).
func TestBootRemovesTemporaries(t *testing.T) {
	dir := newStorage(t)
	tmp := filepath.Join(dir, "objects", strings.Repeat("a", 64)+".tmp123456")
	if err := os.MkdirAll(filepath.Dir(tmp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, dir, nil)
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("%s after boot: %v, want removed", tmp, err)
	}
}

// TestConcurrentObjectUploads: on a real 16 MiB disk with a 25 % GC
// reserve, an upload declaring 7 MiB while another 7 MiB one is under
// way is refused with 507 at once, and the reserve survives (issue 11,
// defect 8: both passed a start-time check and ate it).
func TestConcurrentObjectUploads(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(filepath.Join(storage, "trails", "0", ".pvr"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(storage, "trails", "0", ".pvr", "json"), []byte(emptyState), 0o644); err != nil {
		t.Fatal(err)
	}
	in := start(t, storage, func(o *Options) {
		o.Env = append(o.Env, "PV_STORAGE_GC_RESERVED=25", "PV_LOG_DIR="+filepath.Join(t.TempDir(), "logs"))
	})
	a := bytes.Repeat([]byte("a"), 7<<20)
	b := bytes.Repeat([]byte("b"), 7<<20)
	shaA, shaB := sha256.Sum256(a), sha256.Sum256(b)
	pr, pw := io.Pipe()
	reqA, _ := http.NewRequest("PUT", "http://localhost/objects/"+hex.EncodeToString(shaA[:]), pr)
	reqA.ContentLength = int64(len(a))
	done := make(chan int, 1)
	go func() {
		resp, err := in.hc.Do(reqA)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if _, err := pw.Write(a[:1<<20]); err != nil { // A is reading its body
		t.Fatal(err)
	}
	if got, body := in.call(t, "PUT", "/objects/"+hex.EncodeToString(shaB[:]), bytes.NewReader(b)); got != 507 {
		t.Errorf("PUT 7 MiB object while 7 MiB are promised = %d %s, want 507", got, body)
	}
	pw.Write(a[1<<20:])
	pw.Close()
	if got := <-done; got != 200 {
		t.Errorf("first PUT /objects = %d, want 200", got)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(storage, &fs); err != nil {
		t.Fatal(err)
	}
	if free, reserve := fs.Bavail*uint64(fs.Bsize), fs.Blocks*uint64(fs.Bsize)/4; free < reserve {
		t.Errorf("free space %d after the uploads, below the 25 %% GC reserve %d", free, reserve)
	}
}
