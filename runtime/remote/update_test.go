package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

// fakeUpdates is the daemon's side: a directory of objects, and an
// "updater" that walks a run revision to DONE.
type fakeUpdates struct {
	refuse  error // Stage's answer, when set
	drop    int   // Run calls dropped without a trace (a refused LOCAL_RUN)
	mu      sync.Mutex
	staged  []string
	ran     []string
	prog    map[string]progress.Progress
	objects map[string]bool
	dir     string // partial downloads
	noSpace bool   // OpenPartial refuses as the daemon does when short of space
	free    int64  // Space refuses more than this (0: no limit)
	opened  int    // OpenPartial calls
	held    []string
}

func (f *fakeUpdates) Hold(shas []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = shas
}

func (f *fakeUpdates) Space(need int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.free > 0 && need > f.free {
		return WontGo(progress.Space(need, f.free), errors.New("insufficient storage"))
	}
	return nil
}

func newFakeUpdates(t testing.TB, have []string) *fakeUpdates {
	f := &fakeUpdates{prog: map[string]progress.Progress{}, objects: map[string]bool{}}
	if t != nil {
		f.dir = filepath.Join(t.TempDir(), "downloads")
	} else {
		dir, err := os.MkdirTemp("", "fake-downloads")
		if err != nil {
			panic(err)
		}
		f.dir = filepath.Join(dir, "downloads")
	}
	for _, sha := range have {
		f.objects[sha] = true
	}
	return f
}

func (f *fakeUpdates) HasObject(sha string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objects[sha]
}

func (f *fakeUpdates) partialPath(sha string) string { return filepath.Join(f.dir, sha+".part") }

func (f *fakeUpdates) PartialSize(sha string) int64 {
	fi, err := os.Stat(f.partialPath(sha))
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (f *fakeUpdates) DropPartials() error {
	f.mu.Lock()
	f.held = nil
	f.mu.Unlock()
	return os.RemoveAll(f.dir)
}

func (f *fakeUpdates) OpenPartial(sha string, size int64) (Partial, error) {
	f.mu.Lock()
	noSpace := f.noSpace
	f.opened++
	f.mu.Unlock()
	if noSpace {
		return nil, WontGo(progress.Space(size, 10), errors.New("insufficient storage"))
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return nil, err
	}
	file, err := os.OpenFile(f.partialPath(sha), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	n, _ := file.Seek(0, io.SeekEnd)
	p := &fakePartial{f: f, file: file, sha: sha, n: n}
	if size >= 0 && n > size {
		p.Reset()
	}
	return p, nil
}

// fakePartial is a partial download in a plain directory.
type fakePartial struct {
	f    *fakeUpdates
	file *os.File
	sha  string
	n    int64
}

func (p *fakePartial) Size() int64 { return p.n }

func (p *fakePartial) Write(b []byte) (int, error) {
	m, err := p.file.Write(b)
	p.n += int64(m)
	return m, err
}

func (p *fakePartial) Reset() error {
	p.n = 0
	p.file.Seek(0, io.SeekStart)
	return p.file.Truncate(0)
}

func (p *fakePartial) Install() error {
	b, err := os.ReadFile(p.f.partialPath(p.sha))
	if err != nil {
		return err
	}
	os.Remove(p.f.partialPath(p.sha))
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != p.sha {
		return fmt.Errorf("bad checksum: %w", ErrBadObject)
	}
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	p.f.objects[p.sha] = true
	return nil
}

func (p *fakePartial) Close() error { return p.file.Close() }

func (f *fakeUpdates) Stage(rev string, state json.RawMessage) error {
	if f.refuse != nil {
		return f.refuse
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.staged = append(f.staged, rev)
	f.prog[rev] = progress.New(progress.StatusNew, progress.MsgReady)
	return nil
}

// Run walks rev through INPROGRESS and TESTING to DONE, one status per
// Progress read, so the client sees each of them.
func (f *fakeUpdates) Run(rev string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran = append(f.ran, rev)
	if len(f.ran) <= f.drop {
		return nil
	}
	f.prog[rev] = progress.New(progress.Inprogress, progress.MsgTrying)
	return nil
}

func (f *fakeUpdates) Progress(rev string) (progress.Progress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.prog[rev]
	if !ok {
		return p, fs.ErrNotExist
	}
	switch p.Status {
	case progress.Inprogress:
		f.prog[rev] = progress.New(progress.Testing, progress.MsgTestingNoReboot)
	case progress.Testing:
		f.prog[rev] = progress.New(progress.Done, progress.MsgDone)
	}
	return p, nil
}

func (f *fakeUpdates) counts() (staged, ran, objects int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.staged), len(f.ran), len(f.objects)
}

// updateLab is a claimed device, idle, with its fake daemon.
type updateLab struct {
	*lab
	upd  *fakeUpdates
	user func(method, p string, body any, out any) int
	id   string
	stop func()
	// tweak, when set, adjusts each client before it runs.
	tweak func(*Client)
}

func newUpdateLab(t *testing.T, wrap func(http.Handler) http.Handler) *updateLab {
	return newUpdateLabWith(t, wrap, nil)
}

func newUpdateLabWith(t *testing.T, wrap func(http.Handler) http.Handler, tweak func(*Client)) *updateLab {
	l := newLabWith(t, map[string]string{"factorytok": "user1"}, wrap)
	ul := &updateLab{lab: l, upd: newFakeUpdates(t, l.shas), tweak: tweak}
	ul.start()
	l.await("idle", func() bool { return ul.c().State() == StateIdle })
	ul.id = strings.TrimSpace(l.readRun("device-id"))
	ul.user = l.user("user1")
	return ul
}

var curClient atomic.Pointer[Client]

func (ul *updateLab) c() *Client { return curClient.Load() }

// start runs a new client (a daemon restart: credentials and partial
// downloads are on disk).
func (ul *updateLab) start() {
	c := ul.client(map[string]string{"PH_FACTORY_AUTOTOK": "factorytok"})
	c.o.Updates = ul.upd
	if ul.tweak != nil {
		ul.tweak(c)
	}
	curClient.Store(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	ul.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	ul.t.Cleanup(func() { ul.stop() })
}

// post uploads content as a new object and posts rev 1 with it.
func (ul *updateLab) post(content []byte) string {
	ul.t.Helper()
	sum := sha256.Sum256(content)
	sha := hex.EncodeToString(sum[:])
	var put struct {
		URL string `json:"signed-puturl"`
	}
	if code := ul.user("POST", "/objects/", map[string]string{"objectname": "root.squashfs", "sha256sum": sha,
		"size": fmt.Sprint(len(content))}, &put); code != 200 {
		ul.t.Fatalf("post object: %d", code)
	}
	req, _ := http.NewRequest("PUT", put.URL, bytes.NewReader(content))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		ul.t.Fatalf("upload: %v %v", err, resp)
	}
	resp.Body.Close()
	var state map[string]any
	json.Unmarshal(ul.state, &state)
	state["app/root.squashfs"] = sha
	if code := ul.user("POST", "/trails/"+ul.id+"/steps", map[string]any{"rev": 1, "commit-msg": "update",
		"state": state}, nil); code != 200 {
		ul.t.Fatalf("post step: %d", code)
	}
	return sha
}

func (ul *updateLab) hubStatus() string {
	var st struct {
		Progress struct {
			Status string `json:"status"`
			Msg    string `json:"status-msg"`
		} `json:"progress"`
	}
	ul.user("GET", "/trails/"+ul.id+"/steps/1", nil, &st)
	return st.Progress.Status
}

// progressLog records the statuses the device PUTs, in order.
type progressLog struct {
	mu       sync.Mutex
	statuses []string
}

func (p *progressLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/progress") {
			var b bytes.Buffer
			b.ReadFrom(r.Body)
			var pr struct {
				Status string `json:"status"`
			}
			json.Unmarshal(b.Bytes(), &pr)
			p.mu.Lock()
			if n := len(p.statuses); n == 0 || p.statuses[n-1] != pr.Status {
				p.statuses = append(p.statuses, pr.Status)
			}
			p.mu.Unlock()
			r.Body = nopCloser{&b}
		}
		h.ServeHTTP(w, r)
	})
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

func (p *progressLog) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.statuses)
}

func TestRemoteUpdateToDone(t *testing.T) {
	var log progressLog
	ul := newUpdateLab(t, log.wrap)
	sha := ul.post(bytes.Repeat([]byte("new root "), 10000))
	ul.await("DONE on the hub", func() bool { return ul.hubStatus() == "DONE" })
	want := []string{"QUEUED", "DOWNLOADING", "INPROGRESS", "TESTING", "DONE"}
	if got := log.list(); !slices.Equal(got, want) {
		t.Errorf("progress sent = %v, want %v", got, want)
	}
	if !ul.upd.HasObject(sha) {
		t.Error("the new object was not stored")
	}
	if staged, ran, _ := ul.upd.counts(); staged != 1 || ran != 1 {
		t.Errorf("staged %d, ran %d; want 1, 1", staged, ran)
	}
}

// cutter drops the first object download after cut bytes, then refuses
// downloads until allowed: the device keeps the partial file.
type cutter struct {
	cut     int64
	cutDone chan struct{}
	allowed atomic.Bool
	once    sync.Once
}

type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (w *cutWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > w.left {
		n, _ := w.ResponseWriter.Write(b[:w.left])
		w.left = 0
		w.ResponseWriter.(http.Flusher).Flush()
		return n, errors.New("cut")
	}
	w.left -= int64(len(b))
	return w.ResponseWriter.Write(b)
}

func (c *cutter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/local-s3/") {
			h.ServeHTTP(w, r)
			return
		}
		first := false
		c.once.Do(func() { first = true })
		switch {
		case first:
			h.ServeHTTP(&cutWriter{ResponseWriter: w, left: c.cut}, r)
			close(c.cutDone)
			panic(http.ErrAbortHandler) // the connection drops mid-object
		case !c.allowed.Load():
			http.Error(w, "down", http.StatusServiceUnavailable)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// A download cut mid-object and a restart of the client fetch only the
// missing bytes: the Hub serves the object's size in total.
func TestDownloadResumesAfterCutAndRestart(t *testing.T) {
	cut := &cutter{cut: 300 << 10, cutDone: make(chan struct{})}
	ul := newUpdateLab(t, cut.wrap)
	content := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	sha := ul.post(content)
	<-cut.cutDone
	part := ul.upd.partialPath(sha)
	// The device keeps what it received before the cut (the retries meet
	// a Hub that refuses downloads), then the daemon restarts.
	ul.await("the partial download", func() bool {
		fi, err := os.Stat(part)
		return err == nil && fi.Size() == cut.cut
	})
	ul.stop()
	cut.allowed.Store(true)
	ul.start()
	ul.await("DONE on the hub", func() bool { return ul.hubStatus() == "DONE" })
	if got := ul.hub.Stats().BlobBytesServed; got != int64(len(content)) {
		t.Errorf("hub served %d bytes for a %d-byte object: the resume fetched more than the missing bytes", got, len(content))
	}
	if !ul.upd.HasObject(sha) {
		t.Error("object not stored")
	}
	if _, err := os.Stat(part); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial left behind: %v", err)
	}
}

// corrupt flips a byte of every object download.
func corrupt(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/local-s3/") {
			h.ServeHTTP(&flipWriter{ResponseWriter: w}, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type flipWriter struct {
	http.ResponseWriter
	done bool
}

func (w *flipWriter) Write(b []byte) (int, error) {
	if !w.done && len(b) > 0 {
		b = slices.Clone(b)
		b[0] ^= 0xff
		w.done = true
	}
	return w.ResponseWriter.Write(b)
}

func TestBadObjectIsErrorAndNothingInstalled(t *testing.T) {
	ul := newUpdateLab(t, corrupt)
	sha := ul.post([]byte("an object the network corrupts"))
	ul.await("ERROR on the hub", func() bool { return ul.hubStatus() == "ERROR" })
	if staged, ran, _ := ul.upd.counts(); staged != 0 || ran != 0 || ul.upd.HasObject(sha) {
		t.Errorf("staged %d, ran %d, object stored %v: nothing may be installed", staged, ran, ul.upd.HasObject(sha))
	}
	if _, err := os.Stat(filepath.Join(ul.dir, "downloads", sha+".part")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bad partial kept: %v", err)
	}
}

func TestBadSignatureIsWontGo(t *testing.T) {
	ul := newUpdateLab(t, nil)
	ul.upd.refuse = WontGo(progress.MsgSigFailed, errors.New("Secureboot: bad signature"))
	ul.post([]byte("a signed object"))
	ul.await("WONTGO on the hub", func() bool { return ul.hubStatus() == "WONTGO" })
	var st struct {
		Progress struct {
			Msg string `json:"status-msg"`
		} `json:"progress"`
	}
	ul.user("GET", "/trails/"+ul.id+"/steps/1", nil, &st)
	if st.Progress.Msg != progress.MsgSigFailed {
		t.Errorf("status-msg = %q, want %q", st.Progress.Msg, progress.MsgSigFailed)
	}
	if _, ran, _ := ul.upd.counts(); ran != 0 {
		t.Errorf("a refused revision ran %d times", ran)
	}
	if _, err := os.Stat(filepath.Join(ul.dir, "downloads")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("downloads left after the update ended: %v", err)
	}
}

// An idle device's steps polls are conditional: an unchanged list is a
// body-less 304.
func TestStepsPollIsConditional(t *testing.T) {
	var full, notModified atomic.Int64
	count := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/steps") {
				rec := &statusRecorder{ResponseWriter: w}
				h.ServeHTTP(rec, r)
				if rec.code == http.StatusNotModified {
					notModified.Add(1)
				} else {
					full.Add(1)
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	ul := newUpdateLab(t, count)
	ul.await("20 polls", func() bool { return notModified.Load() >= 20 })
	if n := full.Load(); n != 1 {
		t.Errorf("%d full steps answers for an unchanged list, want 1", n)
	}
	_ = ul
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// A LOCAL_RUN the daemon dropped (its progress stays NEW) is queued
// again, not waited for for ever.
func TestDroppedRunIsQueuedAgain(t *testing.T) {
	l := newLabWith(t, map[string]string{"factorytok": "user1"}, nil)
	ul := &updateLab{lab: l, upd: newFakeUpdates(t, l.shas)}
	ul.upd.drop = 1
	ul.start()
	l.await("idle", func() bool { return ul.c().State() == StateIdle })
	ul.id = strings.TrimSpace(l.readRun("device-id"))
	ul.user = l.user("user1")
	ul.post([]byte("dropped once"))
	ul.await("DONE on the hub", func() bool { return ul.hubStatus() == "DONE" })
	if _, ran, _ := ul.upd.counts(); ran != 2 {
		t.Errorf("ran %d times, want 2 (dropped, then queued again)", ran)
	}
}

// postObjects uploads objects and posts rev 1 with all of them.
func (ul *updateLab) postObjects(contents [][]byte) {
	ul.t.Helper()
	var state map[string]any
	json.Unmarshal(ul.state, &state)
	for i, content := range contents {
		sum := sha256.Sum256(content)
		sha := hex.EncodeToString(sum[:])
		var put struct {
			URL string `json:"signed-puturl"`
		}
		name := fmt.Sprintf("obj%d", i)
		if code := ul.user("POST", "/objects/", map[string]string{"objectname": name, "sha256sum": sha,
			"size": fmt.Sprint(len(content))}, &put); code != 200 {
			ul.t.Fatalf("post object: %d", code)
		}
		req, _ := http.NewRequest("PUT", put.URL, bytes.NewReader(content))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			ul.t.Fatalf("upload: %v %v", err, resp)
		}
		resp.Body.Close()
		state["app/"+name] = sha
	}
	if code := ul.user("POST", "/trails/"+ul.id+"/steps", map[string]any{"rev": 1, "commit-msg": "update",
		"state": state}, nil); code != 200 {
		ul.t.Fatalf("post step: %d", code)
	}
}

// PH_UPDATER_TRANSFER_MAX_COUNT objects download at once, no more.
func TestTransferMaxCount(t *testing.T) {
	for _, limit := range []int{1, 3} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var mu sync.Mutex
			inflight, peak := 0, 0
			ul := newUpdateLab(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/local-s3/") {
						h.ServeHTTP(w, r)
						return
					}
					mu.Lock()
					inflight++
					peak = max(peak, inflight)
					mu.Unlock()
					time.Sleep(300 * time.Millisecond) // long enough for the others to start
					h.ServeHTTP(w, r)
					mu.Lock()
					inflight--
					mu.Unlock()
				})
			})
			if err := ul.c().o.Config.Set("PH_UPDATER_TRANSFER_MAX_COUNT", fmt.Sprint(limit), config.PHConf); err != nil {
				t.Fatal(err)
			}
			var objs [][]byte
			for i := range 5 {
				objs = append(objs, bytes.Repeat([]byte{byte('a' + i)}, 1000))
			}
			ul.postObjects(objs)
			ul.await("DONE on the hub", func() bool { return ul.hubStatus() == "DONE" })
			if _, _, n := ul.upd.counts(); n < 5 {
				t.Errorf("%d objects stored, want 5", n)
			}
			mu.Lock()
			defer mu.Unlock()
			if peak != limit {
				t.Errorf("%d downloads at once, want %d", peak, limit)
			}
		})
	}
}

// A download that keeps failing is tried again after
// PV_REVISION_RETRIES_TIMEOUT, PV_REVISION_RETRIES times, then the update
// is WONTGO "Max download update retries reached"; the Hub sees the
// retries in the DOWNLOADING message.
func TestDownloadRetriesThenWontGo(t *testing.T) {
	const delay = 200 * time.Millisecond
	var mu sync.Mutex
	var tries []time.Time
	var msgs []string
	ul := newUpdateLabWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/local-s3/") {
				mu.Lock()
				tries = append(tries, time.Now())
				mu.Unlock()
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/progress") {
				var b bytes.Buffer
				b.ReadFrom(r.Body)
				var pr struct {
					Msg string `json:"status-msg"`
				}
				json.Unmarshal(b.Bytes(), &pr)
				mu.Lock()
				msgs = append(msgs, pr.Msg)
				mu.Unlock()
				r.Body = nopCloser{&b}
			}
			h.ServeHTTP(w, r)
		})
	}, func(c *Client) {
		c.o.UpdateRetries = 2
		c.o.UpdateRetryDelay = delay
	})
	ul.post(bytes.Repeat([]byte("new root "), 1000))
	ul.await("WONTGO on the hub", func() bool { return ul.hubStatus() == "WONTGO" })
	var st struct {
		Progress struct {
			Msg string `json:"status-msg"`
		} `json:"progress"`
	}
	ul.user("GET", "/trails/"+ul.id+"/steps/1", nil, &st)
	if st.Progress.Msg != progress.MsgMaxDownloadRetries {
		t.Errorf("WONTGO %q, want %q", st.Progress.Msg, progress.MsgMaxDownloadRetries)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tries) != 3 {
		t.Fatalf("%d download tries, want 3 (1 + PV_REVISION_RETRIES=2)", len(tries))
	}
	for i := 1; i < len(tries); i++ {
		if gap := tries[i].Sub(tries[i-1]); gap < delay {
			t.Errorf("try %d came %v after the previous, want >= %v", i, gap, delay)
		}
	}
	if !slices.Contains(msgs, "Downloading update artifacts, retry 2 of 2") {
		t.Errorf("no retry in the DOWNLOADING messages: %q", msgs)
	}
}
