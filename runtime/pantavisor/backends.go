package pantavisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/metadata"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// This file adapts storage, metadata and config to the control socket's
// backend interfaces, mapping their errors to ctrl's status sentinels.

// maxStateJSON bounds a PUT /steps body (it is parsed in memory).
const maxStateJSON = 64 << 20

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
	case errors.Is(err, storage.ErrTooLarge):
		return fmt.Errorf("%w: %w", ctrl.ErrTooLarge, err)
	case errors.Is(err, storage.ErrBadSha), errors.Is(err, storage.ErrBadRevision):
		return fmt.Errorf("%w: %w", ctrl.ErrInvalid, err)
	}
	return err
}

// stepsAPI serves /steps from storage.
type stepsAPI struct {
	s        *storage.Storage
	validate func([]byte) error
	// verify checks the signatures of a validated state (nil = none).
	verify func([]byte) error
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

// Put implements ctrl.Steps: the state is validated before it replaces
// anything, so a bad one keeps nothing and loses nothing.
func (a stepsAPI) Put(rev string, r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, maxStateJSON+1))
	if err != nil {
		return err
	}
	if len(data) > maxStateJSON {
		return ctrl.Errorf(ctrl.ErrTooLarge, "state JSON larger than %d bytes", maxStateJSON)
	}
	if err := a.validate(data); err != nil {
		return ctrl.Errorf(ctrl.ErrBadState, "Parser: %v", err)
	}
	if a.verify != nil {
		if err := a.verify(data); err != nil {
			// Upstream stores the revision, then deletes it: nothing of
			// it may remain, not even an older state under that name.
			if _, serr := a.s.StateJSON(rev); serr == nil {
				a.s.RemoveRevision(rev)
			}
			return ctrl.Errorf(ctrl.ErrBadState, "Secureboot: %v", err)
		}
	}
	if err := a.space(int64(len(data))); err != nil {
		return err
	}
	if err := a.s.WriteStateJSON(rev, bytes.NewReader(data)); err != nil {
		return storageErr(err)
	}
	return storageErr(a.s.WriteProgress(rev, progress.New(progress.StatusNew, progress.MsgReady)))
}

// space checks n bytes fit: storage's Reserve hook and the free space
// left after the reserved share.
func (a stepsAPI) space(n int64) error {
	if a.s.Reserve != nil {
		if err := a.s.Reserve(n); err != nil {
			return ctrl.Errorf(ctrl.ErrNoSpace, "state JSON of %d bytes: %v", n, err)
		}
	}
	if u, err := a.s.Usage(); err == nil && uint64(n) > u.RealFree {
		return ctrl.Errorf(ctrl.ErrNoSpace, "state JSON of %d bytes: only %d bytes free", n, u.RealFree)
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
	keep   func() storage.GCKeep
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
func (a objectsAPI) Put(sha string, r io.Reader) error {
	if a.upload != nil {
		a.upload()
	}
	_, err := a.s.PutObject(sha, r)
	return storageErr(err)
}

// GC implements ctrl.Objects.
func (a objectsAPI) GC() (int64, error) { return a.s.GC(a.keep()) }

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
