package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

// stallTimeout ends a download that received nothing for this long; the
// next try resumes it. A whole-request timeout would cut large objects
// on slow links, so downloads have none.
const stallTimeout = 60 * time.Second

// badObject is an object whose content does not match its sha256: the
// update fails (ERROR), nothing is installed.
type badObject struct {
	sha string
	err error
}

func (e *badObject) Error() string { return fmt.Sprintf("object %s: %v", e.sha, e.err) }

// hubObject is the Hub's answer to GET /objects/<sha>.
type hubObject struct {
	Name   string `json:"objectname"`
	SHA    string `json:"sha256sum"`
	Size   string `json:"size"`
	GetURL string `json:"signed-geturl"`
}

// downloads is the download of an update in flight. Up to
// PH_UPDATER_TRANSFER_MAX_COUNT workers fetch the objects at once (signed
// URLs need no token, so they touch none of the client's state) and send
// one event per object; Run owns the rest
// and reports progress, so a long download never holds up the idle
// loop's metadata, logs and token work.
type downloads struct {
	todo   []hubObject
	stored int // objects the workers stored
	dl     *progress.Downloads
	events chan dlEvent
	cancel context.CancelFunc
}

// dlEvent is the worker's report on object i: the bytes its partial file
// holds, and the error that ended its worker (nil: stored).
type dlEvent struct {
	i    int
	have int64
	err  error
}

// startDownload lists the objects of u that storage lacks, checks that
// they fit in storage all together (WONTGO "Space required…" if not,
// before any download), sends the first DOWNLOADING progress (bytes, per object) and starts the workers.
// Each object goes to its partial download in storage: a cut connection
// or a restart resumes it from the bytes already there (Range). With nothing
// to fetch, u.dls stays nil.
func (c *Client) startDownload(ctx context.Context, u *hubUpdate) error {
	refs, err := stateObjects(u.state)
	if err != nil {
		return WontGo(progress.MsgStateBadFormat, err)
	}
	if err := c.ensureLogin(ctx); err != nil {
		return err
	}
	var all []string
	for _, r := range refs {
		all = append(all, r.SHA)
	}
	// Before anything can run the GC (the space check, a download short
	// of space, the threshold in WAIT): what is already here stays.
	c.o.Updates.Hold(all)
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
		have := c.o.Updates.PartialSize(o.SHA)
		dl.Total.TotalSize += size
		dl.Total.TotalDownloaded += have
		dl.Objects = append(dl.Objects, progress.Download{ObjectName: o.Name, ObjectID: o.SHA, TotalSize: size,
			TotalDownloaded: have, StartTime: start})
	}
	// The whole update must fit before a byte is fetched (spec §4, step
	// 5): refused now, it costs nothing; refused at its last object, it
	// would have filled storage with the others for nothing.
	var need int64
	for _, o := range dl.Objects {
		need += max(o.TotalSize-o.TotalDownloaded, 0)
	}
	if need > 0 {
		if err := c.o.Updates.Space(need); err != nil {
			return err
		}
	}
	if err := c.reportDownload(ctx, u, dl); err != nil {
		return err
	}
	if len(todo) == 0 {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	// events holds one per object: a worker never blocks on a Run that
	// dropped the download.
	d := &downloads{todo: todo, dl: dl, events: make(chan dlEvent, len(todo)), cancel: cancel}
	u.dls = d
	next := make(chan int, len(todo))
	for i := range todo {
		next <- i
	}
	close(next)
	workers := min(max(c.o.Config.Int(config.HubUpdaterTransferMaxCount), 1), len(todo))
	for range workers {
		go func() {
			for i := range next {
				if wctx.Err() != nil {
					return
				}
				n, err := c.fetch(wctx, todo[i])
				d.events <- dlEvent{i: i, have: n, err: err}
				if err != nil {
					return
				}
			}
		}()
	}
	return nil
}

// reportDownload sends DOWNLOADING with a copy of dl.
func (c *Client) reportDownload(ctx context.Context, u *hubUpdate, dl *progress.Downloads) error {
	dl.Total.CurrentTime = time.Now().Unix()
	msg := "Downloading update artifacts"
	if u.tries > 0 && c.o.UpdateRetries > 0 {
		msg = fmt.Sprintf("%s, retry %d of %d", msg, u.tries, c.o.UpdateRetries)
	}
	p := progress.New(progress.Downloading, msg)
	cp := *dl
	cp.Objects = append([]progress.Download(nil), dl.Objects...)
	p.Downloads = &cp
	return c.putProgress(ctx, u, p)
}

// dlEvents is the workers' channel, nil when no download runs.
func (c *Client) dlEvents() <-chan dlEvent {
	if c.upd == nil || c.upd.dls == nil {
		return nil
	}
	return c.upd.dls.events
}

// downloadEvent takes one worker event: progress to the Hub, the next
// phase once every object is stored, or the end of the workers on an
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
		var wg *wontGo
		switch {
		case errors.As(ev.err, &bad):
			return false, c.finish(ctx, progress.New(progress.Error, progress.MsgObjectValidation), ev.err)
		case errors.As(ev.err, &wg):
			return false, c.finish(ctx, progress.New(progress.Wontgo, wg.progressMsg()), ev.err)
		}
		return false, ev.err
	}
	if err := c.reportDownload(ctx, u, d.dl); err != nil {
		c.o.Log.Warn("remote download progress", "err", err)
	}
	if d.stored++; d.stored < len(d.todo) {
		return false, nil
	}
	d.cancel()
	u.dls = nil
	u.phase = phaseStage
	return true, nil
}

// fetch downloads one object into its partial download in storage
// (resuming it), which checks its sha256 and makes it the object. It
// returns the bytes the partial download holds.
func (c *Client) fetch(ctx context.Context, o hubObject) (int64, error) {
	size, err := strconv.ParseInt(o.Size, 10, 64)
	if err != nil {
		size = -1
	}
	p, err := c.o.Updates.OpenPartial(o.SHA, size)
	if err != nil {
		return c.o.Updates.PartialSize(o.SHA), fmt.Errorf("download %s: %w", o.Name, err)
	}
	defer p.Close()
	have := p.Size()
	if size < 0 || have < size {
		if have, err = c.get(ctx, o, p); err != nil {
			return have, err
		}
	}
	if err := p.Install(); err != nil {
		if errors.Is(err, ErrBadObject) {
			return 0, &badObject{sha: o.SHA, err: err}
		}
		return have, fmt.Errorf("store %s: %w", o.Name, err)
	}
	return have, nil
}

// get appends the object's bytes from f's length on to f (a Range request;
// a server that ignores it sends the whole object, which replaces f's
// content). It returns f's length.
func (c *Client) get(ctx context.Context, o hubObject, f Partial) (int64, error) {
	have := f.Size()
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
		if err := f.Reset(); err != nil {
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
