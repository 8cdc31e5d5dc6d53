package pvtx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"

	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
)

// Files in PVTXDIR.
const (
	currentFile = "current.json"
	statusFile  = ".status"
)

// Errors of transaction commands, for errors.Is. The CLI maps them to
// upstream's exit codes.
var (
	ErrNoTransaction = errors.New("no active transaction")
	ErrActive        = errors.New("a transaction is already active")
	ErrLocal         = errors.New("the transaction is local (use deploy)")
	ErrRemote        = errors.New("the transaction is remote (use commit)")
	ErrMissingArg    = errors.New("missing argument")
	ErrNoQueue       = errors.New("no queue (use queue new)")
	ErrBadName       = errors.New("bad revision name")
)

// Options configure a Tx.
type Options struct {
	// Dir is PVTXDIR, the transaction state directory (created if missing).
	Dir string
	// Client reaches pv-ctrl for remote transactions and the "current"
	// base; nil means client.New("") (socket auto-detection).
	Client *client.Client
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
	// Now and Rand make commit names reproducible in tests.
	Now  func() time.Time
	Rand func(n int) int
	// Limits bound package members.
	Limits Limits
	// ObjectBufSize is the copy buffer for objects (PVTX_OBJECT_BUF_SIZE);
	// 0 means 64 KiB.
	ObjectBufSize int
}

// Tx runs pvtx commands against one PVTXDIR. Each method loads the saved
// state, acts and saves, like the upstream tool does per invocation.
type Tx struct {
	o Options
}

// Open prepares the state directory.
func Open(o Options) (*Tx, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("%w: state directory", ErrMissingArg)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if o.Client == nil {
		o.Client = client.New("")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.IntN
	}
	if o.ObjectBufSize <= 0 {
		o.ObjectBufSize = 64 << 10
	}
	o.Limits = o.Limits.withDefaults()
	return &Tx{o: o}, nil
}

// DefaultDir returns upstream's PVTXDIR default: $PREFIX/var/cache/pvtx
// for root, ~/.local/share/pvtx for anybody else. getenv may be nil.
func DefaultDir(getenv func(string) string, euid int) (string, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if euid == 0 {
		return getenv("PREFIX") + "/var/cache/pvtx", nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("HOME is not set (set PVTXDIR)")
	}
	return filepath.Join(home, ".local", "share", "pvtx"), nil
}

func (t *Tx) path(name string) string { return filepath.Join(t.o.Dir, name) }

// status returns the saved status (zero when there is none).
func (t *Tx) status() (status, error) {
	s, _, err := readStatus(t.o.Dir)
	return s, err
}

// activeStatus returns the status of the open transaction or
// ErrNoTransaction.
func (t *Tx) activeStatus() (status, error) {
	s, err := t.status()
	if err != nil {
		return s, err
	}
	if !s.active() {
		return s, ErrNoTransaction
	}
	return s, nil
}

func (t *Tx) loadCurrent() (*Doc, error) {
	data, err := os.ReadFile(t.path(currentFile))
	if err != nil {
		return nil, fmt.Errorf("load transaction: %w", err)
	}
	d, err := ParseDoc(data)
	if err != nil {
		return nil, fmt.Errorf("load transaction: %w", err)
	}
	return d, nil
}

func (t *Tx) saveCurrent(d *Doc) error {
	if err := atomicfile.Write(t.path(currentFile), d.Bytes(), 0o644); err != nil {
		return fmt.Errorf("save transaction: %w", err)
	}
	return nil
}

// store returns where the transaction's objects go.
func (t *Tx) store(s status) objectStore {
	if s.Local {
		return newLocalStore(s.Objdir, t.o.ObjectBufSize)
	}
	return &remoteStore{c: t.o.Client}
}

// Begin starts a transaction from base: "empty" ({"#spec":…} only),
// "current" (GET /steps/current), a JSON file, a directory holding "json"
// or ".pvr/json", or else a revision name fetched from pv-ctrl
// (GET /steps/<rev>). With objdir the transaction is local and its
// objects are written there; without it, it is remote — unless a queue
// was set up, whose object directory is then used.
func (t *Tx) Begin(ctx context.Context, base, objdir string) error {
	if base == "" {
		return fmt.Errorf("%w: base", ErrMissingArg)
	}
	old, err := t.status()
	if err == nil && old.active() {
		return ErrActive
	}
	ns := status{State: StateActive}
	if err == nil && old.State == StateSet {
		ns.Local, ns.Objdir, ns.Queue, ns.Count = old.Local, old.Objdir, old.Queue, old.Count
	}
	if objdir != "" {
		abs, err := filepath.Abs(objdir)
		if err != nil {
			return err
		}
		ns.Local, ns.Objdir = true, abs
	}
	doc, err := t.loadBase(ctx, base)
	if err != nil {
		return err
	}
	if ns.Local {
		if err := os.MkdirAll(ns.Objdir, 0o755); err != nil {
			return fmt.Errorf("object directory: %w", err)
		}
	}
	if err := t.wipe(); err != nil {
		return err
	}
	if err := t.saveCurrent(doc); err != nil {
		return err
	}
	return writeStatus(t.o.Dir, ns)
}

// wipe removes the files pvtx keeps in PVTXDIR (only those: PVTXDIR may
// be a shared directory).
func (t *Tx) wipe() error {
	for _, f := range []string{currentFile, statusFile} {
		if err := os.Remove(t.path(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	tmps, _ := filepath.Glob(t.path(".*.tmp*"))
	for _, f := range tmps {
		os.Remove(f)
	}
	return nil
}

func (t *Tx) loadBase(ctx context.Context, base string) (*Doc, error) {
	switch base {
	case "empty":
		return EmptyDoc(), nil
	case "current":
		return t.fetchStep(ctx, "current")
	}
	fi, err := os.Stat(base)
	switch {
	case err == nil && fi.IsDir():
		for _, n := range []string{"json", ".pvr/json"} {
			if d, err := t.readBaseFile(filepath.Join(base, n)); !errors.Is(err, fs.ErrNotExist) {
				return d, err
			}
		}
		return nil, fmt.Errorf("base %s: no json or .pvr/json in directory", base)
	case err == nil:
		return t.readBaseFile(base)
	case errors.Is(err, fs.ErrNotExist) && revisionLike(base):
		d, ferr := t.fetchStep(ctx, base)
		if ferr != nil {
			return nil, fmt.Errorf("base %s: not a file, and %w", base, ferr)
		}
		return d, nil
	}
	return nil, fmt.Errorf("base: %w", err)
}

// revisionLike reports whether s can name a revision on the device.
func revisionLike(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' || s[0] == '/' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/", c)) {
			return false
		}
	}
	return !strings.Contains(s, "..")
}

func (t *Tx) readBaseFile(name string) (*Doc, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := readJSON(f, t.o.Limits.MaxJSON)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", name, err)
	}
	return d, nil
}

func (t *Tx) fetchStep(ctx context.Context, rev string) (*Doc, error) {
	resp, err := t.o.Client.Do(ctx, "GET", "/steps/"+rev, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("get revision %s: %w", rev, err)
	}
	defer resp.Body.Close()
	d, err := readJSON(resp.Body, t.o.Limits.MaxJSON)
	if err != nil {
		return nil, fmt.Errorf("get revision %s: %w", rev, err)
	}
	return d, nil
}

// Add merges a package (see ReadPackage) into the transaction. Objects go
// to the object directory (local) or to pv-ctrl (remote). Nothing is
// changed when the package is bad.
func (t *Tx) Add(ctx context.Context, r io.Reader) error {
	s, err := t.activeStatus()
	if err != nil {
		return err
	}
	doc, err := t.loadCurrent()
	if err != nil {
		return err
	}
	st := t.store(s)
	pkg, err := ReadPackage(ctx, r, st, t.o.Limits)
	if err != nil {
		st.rollback()
		return err
	}
	doc.Merge(pkg)
	if err := st.commit(); err != nil {
		st.rollback()
		return err
	}
	t.o.Log.Info("added package", "keys", pkg.Len(), "objects", len(pkg.Objects()))
	return t.saveCurrent(doc)
}

// Remove deletes a part from the transaction (see Doc.Remove).
func (t *Tx) Remove(part string) error {
	if part == "" {
		return fmt.Errorf("%w: part", ErrMissingArg)
	}
	if _, err := t.activeStatus(); err != nil {
		return err
	}
	doc, err := t.loadCurrent()
	if err != nil {
		return err
	}
	removed := doc.Remove(part)
	t.o.Log.Info("removed part", "part", part, "keys", len(removed))
	return t.saveCurrent(doc)
}

// Abort discards the transaction (and any queue setup). Without one it
// does nothing.
func (t *Tx) Abort() error {
	if _, err := os.Stat(t.path(statusFile)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return t.wipe()
}

// Show returns the transaction's state JSON.
func (t *Tx) Show() ([]byte, error) {
	if _, err := t.activeStatus(); err != nil {
		return nil, err
	}
	doc, err := t.loadCurrent()
	if err != nil {
		return nil, err
	}
	return doc.Bytes(), nil
}

// Commit sends a remote transaction to pv-ctrl as the local revision
// name (PUT /steps/<name>) and returns the name. An empty name becomes
// locals/pvtx-<epoch>-<first 8 hex of sha256(json)>-<0..999>.
func (t *Tx) Commit(ctx context.Context, name string) (string, error) {
	s, err := t.activeStatus()
	if err != nil {
		return "", err
	}
	if s.Local {
		return "", ErrLocal
	}
	doc, err := t.loadCurrent()
	if err != nil {
		return "", err
	}
	data := doc.Bytes()
	if name == "" {
		sum := sha256.Sum256(data)
		name = fmt.Sprintf("locals/pvtx-%d-%s-%d", t.o.Now().Unix(), hex.EncodeToString(sum[:4]), t.o.Rand(1000))
	}
	n, err := localName(name)
	if err != nil {
		return "", err
	}
	resp, err := t.o.Client.Do(ctx, "PUT", "/steps/locals/"+url.PathEscape(n), bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", name, err)
	}
	resp.Body.Close()
	s.State = StateCommitted
	if err := writeStatus(t.o.Dir, s); err != nil {
		return "", err
	}
	return name, nil
}

// localName checks a local revision name ("locals/<n>", one slash, at
// most 64 characters after the prefix) and returns <n>.
func localName(name string) (string, error) {
	n, ok := strings.CutPrefix(name, "locals/")
	switch {
	case !ok:
		return "", fmt.Errorf("%w: %q does not start with locals/", ErrBadName, name)
	case n == "" || n == "." || n == "..":
		return "", fmt.Errorf("%w: %q has an empty name", ErrBadName, name)
	case len(n) > 64:
		return "", fmt.Errorf("%w: %q is longer than 64 characters after locals/", ErrBadName, name)
	}
	for _, c := range n {
		if c == '/' || c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%w: %q contains %q", ErrBadName, name, c)
		}
	}
	return n, nil
}
