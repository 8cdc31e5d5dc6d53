// Package storage owns pantavisor's /storage tree: the content-addressed
// object store, the per-revision trails, their progress files and the
// garbage collector (spec §2, §4, §12).
//
// Layout under the root (normally /storage):
//
//	objects/<sha256>        blobs, named by the sha256 of their content
//	trails/<rev>/           one materialised revision ("0", "1", … or "locals/<name>")
//	trails/current          relative symlink to the running revision
//	logs/<rev>/             logs of a revision (LogDir)
//	disks/rev/<rev>/        "revision" volumes of a revision
//
// Usage sketch:
//
//	s, err := storage.Open("/storage")
//	n, err := s.PutObject(sha, body)            // hashes while writing, atomic
//	err = s.WriteStateJSON("locals/dev", body)
//	st, _ := state.Parse(json)
//	err = s.Materialize("locals/dev", st)       // hard links + inline files + .pv boot links
//	err = s.WriteProgress("locals/dev", progress.New(progress.StatusNew, progress.MsgReady))
//	reclaimed, err := s.GC(storage.GCKeep{Running: "0"})
//
// Writes in flight reserve their space in one ledger (PutObjectSize,
// NewStateUpload), so concurrent uploads never promise together more
// than the free space left after ReservedPercent. A state upload is
// spooled to disk and becomes a revision's .pvr/json through
// ReplaceState, which refuses revisions in use (ErrInUse):
//
//	up, err := s.NewStateUpload(contentLength)
//	defer up.Close()
//	_, err = up.ReadFrom(body)
//	err = s.ReplaceState("locals/dev", up, progress.New(progress.StatusNew, progress.MsgReady), updater)
//
// Every file is written through a temp file in the same directory that
// is fsynced and renamed, so a crash never leaves a half-written object,
// trail or progress file behind.
package storage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Errors callers test with errors.Is.
var (
	// ErrBadChecksum: the content of an object does not hash to its name
	// (upstream answers 422 "Object has bad checksum").
	ErrBadChecksum = errors.New("object has bad checksum")
	// ErrNoSpace: storing would exceed the free space left after the
	// reserved share, or the filesystem is full (upstream answers 507).
	ErrNoSpace = errors.New("insufficient storage")
	// ErrBadSha: an object name is not 64 lowercase hex digits.
	ErrBadSha = errors.New("bad object sha")
	// ErrBadRevision: a revision name is neither a decimal number nor locals/<name>.
	ErrBadRevision = errors.New("bad revision name")
	// ErrMissingObject: a state references an object that is not stored.
	ErrMissingObject = errors.New("object not found")
	// ErrTooLarge: a commit message exceeds MaxCommitMsg bytes.
	ErrTooLarge = errors.New("too large")
)

// DefaultReservedPercent is the default of PV_STORAGE_GC_RESERVED.
const DefaultReservedPercent = 5

// Storage is a /storage tree. Its methods are safe for concurrent use.
type Storage struct {
	root string

	// LogDir is PV_LOG_DIR, where RemoveRevision and GC delete <rev>/.
	// Open sets it to <root>/logs.
	LogDir string
	// ReservedPercent is PV_STORAGE_GC_RESERVED: the share of the total
	// size PutObject leaves free and Usage reports as reserved.
	ReservedPercent int
	// Reserve, when set, is asked before each chunk PutObject writes
	// whether n more bytes may be stored; an error aborts the put with
	// ErrNoSpace.
	Reserve func(n int64) error
	// Log receives debug and warning messages; Open sets a discarding one.
	Log *slog.Logger

	// space is the ledger of the space promised to writes in flight.
	space ledger

	// mu serialises the operations that write trails: Materialize,
	// RemoveRevision, SetCurrent, GC and the .pvr/.pv file writers, so a
	// progress update cannot be lost in a trail being swapped.
	mu sync.Mutex
}

// Open returns the storage rooted at root, creating objects/, trails/,
// trails/locals/, logs/ and disks/ when missing.
func Open(root string) (*Storage, error) {
	if root == "" {
		return nil, errors.New("open storage: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", root, err)
	}
	s := &Storage{
		root:            abs,
		LogDir:          filepath.Join(abs, "logs"),
		ReservedPercent: DefaultReservedPercent,
		Log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, d := range []string{s.objectsDir(), filepath.Join(s.trailsDir(), "locals"), s.LogDir, filepath.Join(abs, "disks")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open storage %s: %w", root, err)
		}
	}
	return s, nil
}

// Root returns the absolute path of the storage root.
func (s *Storage) Root() string { return s.root }

func (s *Storage) objectsDir() string { return filepath.Join(s.root, "objects") }
func (s *Storage) trailsDir() string  { return filepath.Join(s.root, "trails") }

// Usage is the free-space report of the storage filesystem, shaped like
// device-meta "storage".
type Usage struct {
	Total    uint64 `json:"total"`
	Free     uint64 `json:"free"`
	Reserved uint64 `json:"reserved"`
	RealFree uint64 `json:"real_free"`
}

// Usage reports the storage filesystem's size, free space (available to
// unprivileged users), the ReservedPercent share of the total and what is
// left of the free space after that reserve.
func (s *Storage) Usage() (Usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.root, &st); err != nil {
		return Usage{}, &os.PathError{Op: "statfs", Path: s.root, Err: err}
	}
	bs := uint64(st.Bsize)
	u := Usage{Total: st.Blocks * bs, Free: st.Bavail * bs}
	pct := s.ReservedPercent
	if pct < 0 {
		pct = 0
	}
	if pct > 100 {
		pct = 100
	}
	u.Reserved = u.Total / 100 * uint64(pct)
	u.Reserved += u.Total % 100 * uint64(pct) / 100
	if u.Free > u.Reserved {
		u.RealFree = u.Free - u.Reserved
	}
	return u, nil
}
