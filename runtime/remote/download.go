package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

// stallTimeout ends a download that received nothing for this long; the
// next try resumes it. A whole-request timeout would cut large objects
// on slow links, so downloads have none.
const stallTimeout = 60 * time.Second

// badObject is an object whose content does not match its sha256: the
// update fails (ERROR), nothing is installed.
type badObject struct{ sha, got string }

func (e *badObject) Error() string {
	return fmt.Sprintf("object %s: content has sha256 %s", e.sha, e.got)
}

// hubObject is the Hub's answer to GET /objects/<sha>.
type hubObject struct {
	Name   string `json:"objectname"`
	SHA    string `json:"sha256sum"`
	Size   string `json:"size"`
	GetURL string `json:"signed-geturl"`
}

// downloads is the download of an update in flight. The worker goroutine
// fetches the objects (signed URLs need no token, so it touches none of
// the client's state) and sends one event per object; Run owns the rest
// and reports progress, so a long download never holds up the idle
// loop's metadata, logs and token work.
type downloads struct {
	todo   []hubObject
	dl     *progress.Downloads
	events chan dlEvent
	cancel context.CancelFunc
}

// dlEvent is the worker's report on object i: the bytes its partial file
// holds, and the error that ended the worker (nil: stored).
type dlEvent struct {
	i    int
	have int64
	err  error
}

// startDownload lists the objects of u that storage lacks, sends the
// first DOWNLOADING progress (bytes, per object) and starts the worker.
// Each object goes to DownloadDir/<sha>.part: a cut connection or a
// restart resumes it from the bytes already there (Range). With nothing
// to fetch, u.dls stays nil.
func (c *Client) startDownload(ctx context.Context, u *hubUpdate) error {
	refs, err := stateObjects(u.state)
	if err != nil {
		return WontGo(progress.MsgStateBadFormat, err)
	}
	if err := c.ensureLogin(ctx); err != nil {
		return err
	}
	var todo []hubObject
	seen := map[string]bool{}
	for _, r := range refs {
		if seen[r.SHA] || c.o.Updates.HasObject(r.SHA) {
			continue
		}
		seen[r.SHA] = true
		var o hubObject
		if err := c.call(ctx, http.MethodGet, "/objects/"+r.SHA, nil, nil, &o, true); err != nil {
			return fmt.Errorf("object %s: %w", r.Name, err)
		}
		if o.GetURL == "" {
			return fmt.Errorf("object %s: no signed-geturl", r.Name)
		}
		o.SHA, o.Name = r.SHA, r.Name
		todo = append(todo, o)
	}
	start := time.Now().Unix()
	dl := &progress.Downloads{Total: progress.Download{ObjectName: "total", ObjectID: "none", StartTime: start}}
	for _, o := range todo {
		size, _ := strconv.ParseInt(o.Size, 10, 64)
		have := c.partialSize(o.SHA)
		dl.Total.TotalSize += size
		dl.Total.TotalDownloaded += have
		dl.Objects = append(dl.Objects, progress.Download{ObjectName: o.Name, ObjectID: o.SHA, TotalSize: size,
			TotalDownloaded: have, StartTime: start})
	}
	if err := c.reportDownload(ctx, u, dl); err != nil {
		return err
	}
	if len(todo) == 0 {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	d := &downloads{todo: todo, dl: dl, events: make(chan dlEvent, len(todo)), cancel: cancel}
	u.dls = d
	go func() {
		for i, o := range todo {
			if wctx.Err() != nil {
				return
			}
			n, err := c.fetch(wctx, o)
			d.events <- dlEvent{i: i, have: n, err: err}
			if err != nil {
				return
			}
		}
	}()
	return nil
}

// reportDownload sends DOWNLOADING with a copy of dl.
func (c *Client) reportDownload(ctx context.Context, u *hubUpdate, dl *progress.Downloads) error {
	dl.Total.CurrentTime = time.Now().Unix()
	p := progress.New(progress.Downloading, "Downloading update artifacts")
	cp := *dl
	cp.Objects = append([]progress.Download(nil), dl.Objects...)
	p.Downloads = &cp
	return c.putProgress(ctx, u, p)
}

// dlEvents is the worker's channel, nil when no download runs.
func (c *Client) dlEvents() <-chan dlEvent {
	if c.upd == nil || c.upd.dls == nil {
		return nil
	}
	return c.upd.dls.events
}

// downloadEvent takes one worker event: progress to the Hub, the next
// phase once the last object is stored, or the end of the worker on an
// error (a bad object fails the update; anything else is retried by the
// next poll, which resumes the partial files). It returns whether there
// is more to do at once.
func (c *Client) downloadEvent(ctx context.Context, ev dlEvent) (bool, error) {
	u := c.upd
	d := u.dls
	o := &d.dl.Objects[ev.i]
	d.dl.Total.TotalDownloaded += ev.have - o.TotalDownloaded
	o.TotalDownloaded, o.CurrentTime = ev.have, time.Now().Unix()
	if ev.err != nil {
		d.cancel()
		u.dls = nil
		var bad *badObject
		if errors.As(ev.err, &bad) {
			return false, c.finish(ctx, progress.New(progress.Error, progress.MsgObjectValidation), ev.err)
		}
		return false, ev.err
	}
	if err := c.reportDownload(ctx, u, d.dl); err != nil {
		c.o.Log.Warn("remote download progress", "err", err)
	}
	if ev.i < len(d.todo)-1 {
		return false, nil
	}
	d.cancel()
	u.dls = nil
	u.phase = phaseStage
	return true, nil
}

func (c *Client) partialPath(sha string) string {
	return filepath.Join(c.o.DownloadDir, sha+".part")
}

func (c *Client) partialSize(sha string) int64 {
	fi, err := os.Stat(c.partialPath(sha))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// fetch downloads one object, resuming its partial file, checks its
// sha256 and hands it to storage. It returns the bytes the partial file
// holds.
func (c *Client) fetch(ctx context.Context, o hubObject) (int64, error) {
	if err := os.MkdirAll(c.o.DownloadDir, 0o700); err != nil {
		return 0, fmt.Errorf("download dir: %w", err)
	}
	path := c.partialPath(o.SHA)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", o.Name, err)
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	size, _ := strconv.ParseInt(o.Size, 10, 64)
	if size > 0 && have > size { // not a prefix of this object: start over
		if err := f.Truncate(0); err != nil {
			return 0, err
		}
		have = 0
	}
	if have == 0 || size <= 0 || have < size {
		if have, err = c.get(ctx, o, f, have); err != nil {
			f.Sync()
			return have, err
		}
	}
	if err := f.Sync(); err != nil {
		return have, fmt.Errorf("download %s: %w", o.Name, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return have, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return have, fmt.Errorf("download %s: %w", o.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != o.SHA {
		os.Remove(path) // a bad partial must not poison the next try
		return 0, &badObject{sha: o.SHA, got: got}
	}
	if err := c.o.Updates.PutObject(o.SHA, path); err != nil {
		return have, fmt.Errorf("store %s: %w", o.Name, err)
	}
	os.Remove(path)
	return have, nil
}

// get appends the object's bytes from offset have to f (a Range request;
// a server that ignores it sends the whole object, which replaces f's
// content). It returns f's length.
func (c *Client) get(ctx context.Context, o hubObject, f *os.File, have int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.GetURL, nil)
	if err != nil {
		return have, err
	}
	req.Header.Set("User-Agent", c.o.UserAgent)
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	hc := *c.o.HTTP
	hc.Timeout = 0 // the stall watchdog bounds it instead
	resp, err := hc.Do(req)
	if err != nil {
		return have, fmt.Errorf("download %s: %w", o.Name, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
	case resp.StatusCode == http.StatusOK:
		if err := f.Truncate(0); err != nil {
			return have, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return have, err
		}
		have = 0
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return have, nil // complete already, or bad: the sha256 decides
	default:
		return have, fmt.Errorf("download %s: %s", o.Name, resp.Status)
	}
	size, _ := strconv.ParseInt(o.Size, 10, 64)
	limit := size - have
	if size <= 0 {
		limit = maxObject
	}
	stall := time.AfterFunc(stallTimeout, cancel)
	defer stall.Stop()
	n, err := io.Copy(f, &stallReader{r: io.LimitReader(resp.Body, limit), t: stall})
	have += n
	if err != nil {
		return have, fmt.Errorf("download %s: %w", o.Name, err)
	}
	return have, nil
}

// maxObject bounds an object whose size the Hub did not say.
const maxObject = 4 << 30

// stallReader re-arms t on every read that brings bytes.
type stallReader struct {
	r io.Reader
	t *time.Timer
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.t.Reset(stallTimeout)
	}
	if errors.Is(err, context.Canceled) {
		err = fmt.Errorf("stalled for %v: %w", stallTimeout, err)
	}
	return n, err
}
