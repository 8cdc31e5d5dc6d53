package pantavisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sync"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/metadata"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// This file adapts storage, metadata and config to the control socket's
// backend interfaces, mapping their errors to ctrl's status sentinels.

// maxStateJSON bounds a PUT /steps body. The state parser needs the
// whole document in memory, and allocates about 8.5 times its size for
// one made of small entries (measured: 537 MiB for a 63 MiB state), so
// the old 64 MiB bound let one upload take PID 1 far beyond the 64 MiB
// RSS it must stay under (issue 11, defect 7). A state names files by
// object sha; even 200 containers with full run.json, signatures and
// config files take 0.5 MiB, so 4 MiB leaves room for any real device
// while keeping one validation near 35 MiB of allocations.
const maxStateJSON = 4 << 20

// storageErr maps a storage error to a ctrl sentinel.
func storageErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, storage.ErrMissingObject):
		return fmt.Errorf("%w: %w", ctrl.ErrNotFound, err)
	case errors.Is(err, storage.ErrBadChecksum):
		return fmt.Errorf("%w: %w", ctrl.ErrBadState, err)
	case errors.Is(err, storage.ErrNoSpace):
		return ctrl.Errorf(ctrl.ErrNoSpace, "%v", err)
	case errors.Is(err, storage.ErrInUse):
		return ctrl.Errorf(ctrl.ErrConflict, "%v: revisions are immutable once installed; upload under a new name", err)
	case errors.Is(err, storage.ErrTooLarge):
		return fmt.Errorf("%w: %w", ctrl.ErrTooLarge, err)
	case errors.Is(err, storage.ErrBadSha), errors.Is(err, storage.ErrBadRevision):
		return fmt.Errorf("%w: %w", ctrl.ErrInvalid, err)
	}
	return err
}

// stepsAPI serves /steps from storage.
type stepsAPI struct {
	s *storage.Storage
	// inUse names the revisions a PUT may not replace.
	inUse func() storage.Keeper
	// parse validates a state (nil error) and returns it parsed.
	parse func([]byte) (*state.State, error)
	// verify checks the signatures of a parsed state (nil = none).
	verify func(*state.State) error
	// validating admits one validation at a time: it holds the whole
	// state and the parser's allocations, whatever the number of uploads.
	validating chan struct{}
}

func newStepsAPI(s *storage.Storage, inUse func() storage.Keeper, parse func([]byte) (*state.State, error), verify func(*state.State) error) stepsAPI {
	return stepsAPI{s: s, inUse: inUse, parse: parse, verify: verify, validating: make(chan struct{}, 1)}
}

func (a stepsAPI) resolve(rev string) (string, error) {
	if rev != "current" {
		return rev, nil
	}
	cur, err := a.s.Current()
	return cur, storageErr(err)
}

// List implements ctrl.Steps.
func (a stepsAPI) List() ([]ctrl.Step, error) {
	revs, err := a.s.Revisions()
	if err != nil {
		return nil, err
	}
	out := make([]ctrl.Step, 0, len(revs))
	for _, rev := range revs {
		info, err := os.Stat(a.s.TrailDir(rev))
		if err != nil {
			continue
		}
		st := ctrl.Step{Name: rev, Date: info.ModTime()}
		st.CommitMsg, _ = a.s.CommitMsg(rev)
		if p, err := a.s.Progress(rev); err == nil {
			st.Progress, _ = json.Marshal(p)
		}
		out = append(out, st)
	}
	return out, nil
}

// State implements ctrl.Steps.
func (a stepsAPI) State(rev string) ([]byte, error) {
	rev, err := a.resolve(rev)
	if err != nil {
		return nil, err
	}
	b, err := a.s.StateJSON(rev)
	return b, storageErr(err)
}

// Put implements ctrl.Steps: the body is spooled to storage (its space
// reserved, nothing of it in memory), then validated one upload at a
// time, and only then replaces the revision's state, unless that
// revision is in use (409). A bad state keeps nothing and loses nothing.
func (a stepsAPI) Put(rev string, size int64, r io.Reader) error {
	if size > maxStateJSON {
		return ctrl.Errorf(ctrl.ErrTooLarge, "state JSON of %d bytes: larger than %d bytes", size, maxStateJSON)
	}
	if err := a.s.CheckReplaceable(rev, a.inUse()); err != nil {
		return storageErr(err)
	}
	up, err := a.s.NewStateUpload(size)
	if err != nil {
		return storageErr(err)
	}
	defer up.Close()
	if _, err := up.ReadFrom(io.LimitReader(r, maxStateJSON+1)); err != nil {
		return storageErr(err)
	}
	if up.Size() > maxStateJSON {
		return ctrl.Errorf(ctrl.ErrTooLarge, "state JSON larger than %d bytes", maxStateJSON)
	}
	if err := a.check(rev, up); err != nil {
		return err
	}
	err = a.s.ReplaceState(rev, up, progress.New(progress.StatusNew, progress.MsgReady), a.inUse())
	return storageErr(err)
}

// check parses and verifies the upload, one at a time.
func (a stepsAPI) check(rev string, up *storage.StateUpload) error {
	a.validating <- struct{}{}
	defer func() { <-a.validating }()
	// The parser's garbage (about 8 times the state) is collected before
	// the next validation starts, not left to grow the heap target:
	// 8 uploads of 4 MiB peaked about 3 MiB higher without it.
	defer runtime.GC()
	data, err := up.Bytes()
	if err != nil {
		return storageErr(err)
	}
	st, err := a.parse(data)
	if err != nil {
		return ctrl.Errorf(ctrl.ErrBadState, "Parser: %v", err)
	}
	if a.verify == nil {
		return nil
	}
	if err := a.verify(st); err != nil {
		// Upstream stores the revision, then deletes it: nothing of
		// it may remain, not even an older state under that name. The
		// check and the removal are one storage operation, so an
		// install of rev starting meanwhile keeps its trail (issue 11
		// review, finding 7); a revision in use is simply kept.
		if rerr := a.s.RemoveReplaceable(rev, a.inUse()); rerr != nil && !errors.Is(rerr, storage.ErrInUse) {
			return ctrl.Errorf(ctrl.ErrBadState, "Secureboot: %v (cleanup: %v)", err, rerr)
		}
		return ctrl.Errorf(ctrl.ErrBadState, "Secureboot: %v", err)
	}
	return nil
}

// Progress implements ctrl.Steps.
func (a stepsAPI) Progress(rev string) ([]byte, error) {
	rev, err := a.resolve(rev)
	if err != nil {
		return nil, err
	}
	p, err := a.s.Progress(rev)
	if err != nil {
		return nil, storageErr(err)
	}
	return json.Marshal(p)
}

// SetCommitMsg implements ctrl.Steps.
func (a stepsAPI) SetCommitMsg(rev string, msg []byte) error {
	rev, err := a.resolve(rev)
	if err != nil {
		return err
	}
	if !a.s.HasRevision(rev) {
		return fmt.Errorf("revision %s: %w", rev, ctrl.ErrNotFound)
	}
	return storageErr(a.s.WriteCommitMsg(rev, msg))
}

// objectsAPI serves /objects and /storage/gc from storage.
type objectsAPI struct {
	s      *storage.Storage
	gc     func() (int64, error)
	upload func() // called on every upload (defers the GC threshold)
}

// List implements ctrl.Objects.
func (a objectsAPI) List() ([]ctrl.Object, error) {
	objs, err := a.s.Objects()
	if err != nil {
		return nil, err
	}
	out := make([]ctrl.Object, len(objs))
	for i, o := range objs {
		out[i] = ctrl.Object{Sha: o.Sha, Size: o.Size}
	}
	return out, nil
}

// Open implements ctrl.Objects.
func (a objectsAPI) Open(sha string) (io.ReadCloser, error) {
	f, err := a.s.OpenObject(sha)
	if err != nil {
		return nil, storageErr(err)
	}
	return f, nil
}

// Put implements ctrl.Objects.
func (a objectsAPI) Put(sha string, size int64, r io.Reader) error {
	if a.upload != nil {
		a.upload()
	}
	_, err := a.s.PutObjectSize(sha, size, r)
	return storageErr(err)
}

// GC implements ctrl.Objects.
func (a objectsAPI) GC() (int64, error) { return a.gc() }

// metaAPI maps metadata errors for the control socket and caches the GET
// rendering between changes (GET /device-meta is the hot endpoint).
type metaAPI struct {
	s     *metadata.Store
	cache *metaCache
}

type metaCache struct {
	mu  sync.Mutex
	gen uint64
	buf []byte // rendering of generation gen; nil = none
}

func newMetaAPI(s *metadata.Store) metaAPI {
	c := &metaCache{}
	s.OnChange(func(metadata.Change) {
		c.mu.Lock()
		c.gen++
		c.buf = nil
		c.mu.Unlock()
	})
	return metaAPI{s: s, cache: c}
}

func metaErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, metadata.ErrNotFound):
		return fmt.Errorf("%w: %w", ctrl.ErrNotFound, err)
	case errors.Is(err, metadata.ErrTooLarge):
		return fmt.Errorf("%w: %w", ctrl.ErrTooLarge, err)
	case errors.Is(err, metadata.ErrBadKey):
		return fmt.Errorf("%w: %w", ctrl.ErrInvalid, err)
	}
	return err
}

func (m metaAPI) Set(key string, value []byte) error { return metaErr(m.s.Set(key, value)) }
func (m metaAPI) Delete(key string) error            { return metaErr(m.s.Delete(key)) }
func (m metaAPI) MarshalJSON() ([]byte, error) {
	c := m.cache
	c.mu.Lock()
	buf, gen := c.buf, c.gen
	c.mu.Unlock()
	if buf != nil {
		return buf, nil
	}
	buf, err := m.s.MarshalJSON()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen { // no change while rendering
		c.buf = buf
	}
	c.mu.Unlock()
	return buf, nil
}

// userMetaAPI also applies user-meta keys that are configuration keys at
// the metadata level, and reverts them on delete (spec §8).
type userMetaAPI struct {
	metaAPI
	cfg *config.Config
}

func (u userMetaAPI) Set(key string, value []byte) error {
	if err := u.metaAPI.Set(key, value); err != nil {
		return err
	}
	if config.IsKey(key) {
		u.cfg.Set(key, string(value), config.Metadata) // not allowed keys are only logged
	}
	return nil
}

func (u userMetaAPI) Delete(key string) error {
	if err := u.metaAPI.Delete(key); err != nil {
		return err
	}
	if config.IsKey(key) {
		u.cfg.Unset(key, config.Metadata)
	}
	return nil
}

// cfgAPI serves /config and /config2.
type cfgAPI struct{ c *config.Config }

func (a cfgAPI) Legacy() map[string]any { return a.c.Legacy() }

func (a cfgAPI) Entries() []ctrl.ConfigEntry {
	es := a.c.Entries()
	out := make([]ctrl.ConfigEntry, len(es))
	for i, e := range es {
		out[i] = ctrl.ConfigEntry(e)
	}
	return out
}
