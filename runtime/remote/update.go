package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

// Updates is the daemon's side of remote updates. The client downloads and
// stages; the daemon's single owner of update state runs the revision
// (the same path as LOCAL_RUN), and the client mirrors its progress.
type Updates interface {
	// HasObject reports whether storage holds the object.
	HasObject(sha string) bool
	// OpenPartial opens the resumable download of object sha (size
	// bytes, < 0: unknown) in storage, the bytes it lacks promised in
	// storage's space ledger; PartialSize is what one holds so far;
	// DropPartials removes them all and ends the Hold (the update they
	// were for ended).
	OpenPartial(sha string, size int64) (Partial, error)
	PartialSize(sha string) int64
	DropPartials() error
	// Hold keeps the objects of the update being downloaded from the
	// GC (no trail links them before Stage) until DropPartials.
	Hold(shas []string)
	// Space checks, before any download, that storage can take need
	// more bytes (its free space less the GC reserve and the writes in
	// flight; the GC may run to make room); short, it is an error
	// wrapping ErrWontGo with the message progress.Space gives.
	Space(need int64) error
	// Stage stores rev's state once parsed and its signatures checked;
	// an error wrapping ErrWontGo means rev must never be installed.
	Stage(rev string, state json.RawMessage) error
	// Run queues rev to the daemon's updater (it never blocks; a busy
	// daemon is an error and the client asks again).
	Run(rev string) error
	// Progress is rev's local progress (fs.ErrNotExist when none).
	Progress(rev string) (progress.Progress, error)
}

// Partial is one resumable download (storage.Partial).
type Partial interface {
	io.Writer
	Size() int64  // bytes held
	Reset() error // start over (the server sent the whole object)
	// Install checks the content and makes it the object; a content
	// with another sha256 is an error wrapping ErrBadObject.
	Install() error
	Close() error
}

// ErrBadObject marks downloaded content that does not match its sha256.
var ErrBadObject = errors.New("object content does not match its sha256")

// ErrWontGo marks a revision the device refuses (bad signature or state).
var ErrWontGo = errors.New("revision refused")

// WontGo wraps err as a refusal with the progress message msg.
func WontGo(msg string, err error) error { return &wontGo{msg, err} }

type wontGo struct {
	msg string
	err error
}

func (w *wontGo) Error() string       { return w.msg + ": " + w.err.Error() }
func (w *wontGo) Unwrap() []error     { return []error{ErrWontGo, w.err} }
func (w *wontGo) progressMsg() string { return w.msg }

// pollStatuses are the step statuses the device asks for, as pantavisor
// sends them: a step the device left unfinished (a reboot, a cut) is
// found again.
var pollStatuses = url.Values{"progress.status": {`{"$in":["NEW","DOWNLOADING","INPROGRESS","TESTING","QUEUED"]}`}}.Encode()

type phase int

const (
	phaseDownload phase = iota
	phaseStage
	phaseRun
	phaseMirror
)

// hubUpdate is the remote update in flight; owned by Run.
type hubUpdate struct {
	rev   string
	state json.RawMessage
	phase phase
	sent  progress.Progress // last progress the Hub acknowledged
	waits int               // mirror polls that found it not started
	tries int               // failed download tries
	dls   *downloads        // the download worker, while it runs
}

// maxQueuedPolls is how many polls a queued revision may stay NEW before
// it is queued again: the updater refuses a LOCAL_RUN without writing its
// progress (busy with another update, say), and the device must not wait
// for ever.
const maxQueuedPolls = 30

// hubStep is what the device reads of a step.
type hubStep struct {
	Rev      int             `json:"rev"`
	State    json.RawMessage `json:"state"`
	Progress struct {
		Status string `json:"status"`
	} `json:"progress"`
}

// pollUpdate advances the remote update by one phase, or looks for a new
// one (a conditional GET: an unchanged list costs a 304). It returns
// whether there is more to do at once.
func (c *Client) pollUpdate(ctx context.Context) (bool, error) {
	if c.upd == nil {
		return false, c.findUpdate(ctx)
	}
	u := c.upd
	switch u.phase {
	case phaseDownload:
		if u.dls != nil {
			return false, nil // the worker reports through downloadEvent
		}
		if err := c.startDownload(ctx, u); err != nil {
			var wg *wontGo
			if errors.As(err, &wg) {
				return false, c.finish(ctx, progress.New(progress.Wontgo, wg.progressMsg()), err)
			}
			return false, err
		}
		if u.dls != nil {
			return false, nil
		}
		u.phase = phaseStage // nothing to fetch
		return true, nil
	case phaseStage:
		err := c.o.Updates.Stage(u.rev, u.state)
		var wg *wontGo
		if errors.As(err, &wg) {
			return false, c.finish(ctx, progress.New(progress.Wontgo, wg.progressMsg()), err)
		}
		if err != nil {
			return false, fmt.Errorf("stage %s: %w", u.rev, err)
		}
		u.phase = phaseRun
		return true, nil
	case phaseRun:
		if err := c.o.Updates.Run(u.rev); err != nil {
			return false, fmt.Errorf("run %s: %w", u.rev, err)
		}
		u.phase = phaseMirror
		return false, nil
	}
	return false, c.mirror(ctx, u)
}

// findUpdate takes the oldest step the Hub lists for the device.
func (c *Client) findUpdate(ctx context.Context) error {
	if err := c.ensureLogin(ctx); err != nil {
		return err
	}
	hdr := http.Header{}
	if c.stepsETag != "" {
		hdr.Set("If-None-Match", c.stepsETag)
	}
	h, b, err := c.roundTrip(ctx, http.MethodGet, "/trails/"+c.id+"/steps?"+pollStatuses, hdr, nil, true)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusNotModified {
		return nil
	}
	if err != nil {
		return fmt.Errorf("steps: %w", err)
	}
	var steps []hubStep
	if err := json.Unmarshal(b, &steps); err != nil {
		return fmt.Errorf("steps: %w", err)
	}
	slices.SortFunc(steps, func(a, b hubStep) int { return a.Rev - b.Rev })
	for _, s := range steps {
		rev := strconv.Itoa(s.Rev)
		if s.Rev <= 0 || c.finished[rev] {
			continue
		}
		u := &hubUpdate{rev: rev, state: s.State}
		p, err := c.o.Updates.Progress(rev)
		switch {
		case err == nil && p.Status != progress.StatusNew:
			u.phase = phaseMirror // staged and run before a restart
		case err == nil || errors.Is(err, fs.ErrNotExist):
			if err := c.putProgress(ctx, u, progress.New(progress.Queued, "Update queued")); err != nil {
				return err
			}
		default:
			return fmt.Errorf("progress of %s: %w", rev, err)
		}
		c.o.Log.Info("remote update", "rev", rev)
		c.upd = u
		return nil
	}
	// Nothing to take: the next poll asks for changes only.
	c.stepsETag = h.Get("ETag")
	return nil
}

// mirror sends the local progress of u to the Hub when it changed, and
// ends u on a final status.
func (c *Client) mirror(ctx context.Context, u *hubUpdate) error {
	p, err := c.o.Updates.Progress(u.rev)
	if err != nil {
		return fmt.Errorf("progress of %s: %w", u.rev, err)
	}
	if p.Status == progress.StatusNew {
		// Queued to the daemon, not started yet.
		if u.waits++; u.waits >= maxQueuedPolls {
			c.o.Log.Warn("remote update not started: queueing it again", "rev", u.rev)
			u.phase, u.waits = phaseRun, 0
		}
		return nil
	}
	u.waits = 0
	if p.Status == u.sent.Status && p.Msg == u.sent.Msg {
		return nil
	}
	if p.Status.Final() {
		return c.finish(ctx, p, nil)
	}
	return c.putProgress(ctx, u, p)
}

// finish reports u's final progress and forgets u (its rev is never
// taken again in this run; a restart finds it final on the Hub).
func (c *Client) finish(ctx context.Context, p progress.Progress, cause error) error {
	u := c.upd
	if u.dls != nil {
		u.dls.cancel()
		u.dls = nil
	}
	if cause != nil {
		c.o.Log.Warn("remote update failed", "rev", u.rev, "status", p.Status, "err", cause)
		p.Logs = cause.Error()
	}
	if err := c.putProgress(ctx, u, p); err != nil {
		return err
	}
	c.o.Log.Info("remote update ended", "rev", u.rev, "status", p.Status)
	// Partial downloads belong to the update in flight only.
	if c.o.Updates != nil {
		if err := c.o.Updates.DropPartials(); err != nil {
			c.o.Log.Warn("remote downloads cleanup", "err", err)
		}
	}
	c.finished[u.rev] = true
	c.upd, c.stepsETag = nil, ""
	return nil
}

// hubProgress is the progress body pantavisor sends.
type hubProgress struct {
	Status    progress.Status     `json:"status"`
	StatusMsg string              `json:"status-msg"`
	Progress  int                 `json:"progress"`
	Log       string              `json:"log"`
	Downloads *progress.Downloads `json:"downloads,omitempty"`
}

// putProgress sends p as u's progress on the Hub.
func (c *Client) putProgress(ctx context.Context, u *hubUpdate, p progress.Progress) error {
	body := hubProgress{Status: p.Status, StatusMsg: p.Msg, Progress: p.Progress, Log: p.Logs, Downloads: p.Downloads}
	if err := c.call(ctx, http.MethodPut, "/trails/"+c.id+"/steps/"+u.rev+"/progress", nil, body, nil, true); err != nil {
		return fmt.Errorf("progress %s: %w", p.Status, err)
	}
	u.sent = p
	return nil
}
