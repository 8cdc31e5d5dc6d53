// Package ctrl serves Pantavisor's control API (pv-ctrl): HTTP/1.x over a
// unix socket, with upstream's paths and JSON shapes.
//
// The handler owns one route table (method, path pattern, read/write,
// mgmt/any) and enforces method, access and body limits in one place; the
// endpoints only talk to small backend interfaces that the daemon implements:
//
//	h := ctrl.New(ctrl.Options{Log: log, Steps: steps, Objects: objs, ...})
//	ln, err := ctrl.Listen(filepath.Join(run, "pv-ctrl"))
//	srv := ctrl.NewServer(h)
//	go srv.Serve(ln)
//
// Each connection's caller is identified once, at accept (Options.Identify;
// by default the peer's pidfd and /proc/<pid>/cgroup, see identity.go), and
// the connections of each non-mgmt caller and of all callers are bounded,
// with a reserve for the host and mgmt (conns.go). The route table is an
// option too (default DefaultRoutes()), so another surface can reuse the
// handler with its own routes and identification. Answers are typed
// structs (responses.go) pinned by testdata/*.json. Endpoints whose backend
// is nil answer 501.
//
// Where upstream's code disagrees with its docs or with what a client would
// expect (spec §5 ⚠), this package does the expected thing:
//   - oversized bodies are 413 (upstream: 507 for a long commit message);
//   - /commands op names match exactly (upstream prefix-matches, so "" is
//     UPDATE_METADATA), and ops the daemon cannot run answer 501 instead of
//     200-and-ignored;
//   - only a "mgmt" role is privileged: a platform without roles is not
//     (the docs say so; upstream defaults it to mgmt);
//   - a non-mgmt caller always gets 403 (upstream answers status 1 for
//     PUT user-meta and commitmsg).
package ctrl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors a backend returns (wrapped with %w) so the handler can
// pick the status code.
var (
	// ErrNotFound is answered with 404.
	ErrNotFound = errors.New("not found")
	// ErrInvalid is answered with 400 (bad request data).
	ErrInvalid = errors.New("invalid")
	// ErrBadState is answered with 422: the uploaded content does not validate.
	ErrBadState = errors.New("unprocessable content")
	// ErrNoSpace is answered with 507.
	ErrNoSpace = errors.New("insufficient storage")
	// ErrConflict is answered with 409.
	ErrConflict = errors.New("conflict")
	// ErrBusy is answered with 503.
	ErrBusy = errors.New("busy")
	// ErrTooLarge is answered with 413.
	ErrTooLarge = errors.New("request body too large")
	// ErrNotImplemented is answered with 501.
	ErrNotImplemented = errors.New("not implemented")
	// ErrForbidden is answered with 403.
	ErrForbidden = errors.New("forbidden")
	// ErrInternal is answered with 500 and the error's own message (use
	// Errorf for the upstream wording, e.g. "State not loaded yet").
	ErrInternal = errors.New("internal error")
)

// Meta is a metadata store (user-meta or device-meta).
type Meta interface {
	// Set stores value under key.
	Set(key string, value []byte) error
	// Delete removes key (ErrNotFound if absent).
	Delete(key string) error
	// MarshalJSON returns the GET shape: an object, newest key first.
	MarshalJSON() ([]byte, error)
}

// Step is one entry of GET /steps.
type Step struct {
	Name      string
	Date      time.Time
	CommitMsg string
	// Progress is the raw progress JSON; nil means none (rendered {}).
	Progress json.RawMessage
}

// Steps gives access to revisions (trails).
type Steps interface {
	// List returns every revision.
	List() ([]Step, error)
	// State returns the raw .pvr/json of rev (ErrNotFound).
	State(rev string) ([]byte, error)
	// Put stores a new local revision from r, of size bytes (the
	// Content-Length, -1 unknown); on a state that does not validate it
	// returns ErrBadState and keeps nothing.
	Put(rev string, size int64, r io.Reader) error
	// Progress returns the raw progress JSON of rev (ErrNotFound).
	Progress(rev string) ([]byte, error)
	// SetCommitMsg stores the commit message of rev (ErrNotFound).
	SetCommitMsg(rev string, msg []byte) error
}

// Object is one entry of GET /objects.
type Object struct {
	Sha  string
	Size int64
}

// Objects gives access to the object store.
type Objects interface {
	// List returns every object.
	List() ([]Object, error)
	// Open opens object sha (ErrNotFound).
	Open(sha string) (io.ReadCloser, error)
	// Put streams r, of size bytes (the Content-Length, -1 unknown), into
	// object sha, verifying its checksum (ErrBadState on mismatch,
	// ErrNoSpace when full). An existing valid object is kept.
	Put(sha string, size int64, r io.Reader) error
	// GC runs the garbage collector and returns the reclaimed bytes.
	GC() (int64, error)
}

// Config renders the configuration endpoints.
type Config interface {
	// Legacy returns the GET /config object: legacy alias → a bool, a
	// number or a string.
	Legacy() map[string]any
	// Entries returns the GET /config2 array.
	Entries() []ConfigEntry
}

// Daemons manages the helper daemons.
type Daemons interface {
	// List returns the managed daemons.
	List() []Daemon
	// Action starts or stops a daemon (ErrNotFound, ErrInvalid).
	Action(name, action string) error
}

// Platforms resolves callers to platforms of the running revision.
type Platforms interface {
	// Caller reports whether name is a platform of the running revision and
	// whether it has the mgmt role.
	Caller(name string) (known, mgmt bool)
}

// Containers is the container backend (issue 4). Nil answers 501.
type Containers interface {
	// Containers returns the GET /containers array.
	Containers() ([]Container, error)
	// ContainerAction applies {"action": …} to a container.
	ContainerAction(name, action string) error
	// Groups returns the GET /groups array.
	Groups() ([]Group, error)
	// Signal delivers a status signal ("ready", "alive") from platform.
	Signal(platform, typ, payload string) error
}

// Drivers is the managed drivers backend. Nil answers 501.
type Drivers interface {
	// Drivers lists the drivers referenced by platform.
	Drivers(platform string) ([]Driver, error)
	// Load loads (or unloads) the manual drivers of platform; name "" = all.
	Load(platform, name string, load bool) error
}

// Extras are the remaining read-only endpoints. Nil answers 501.
type Extras interface {
	// XConnectGraph returns the GET /xconnect-graph array (ErrNotFound if
	// not built).
	XConnectGraph() ([]XConnectLink, error)
	// Wakelocks returns the GET /wakelocks object.
	Wakelocks() (Wakelocks, error)
}

// statusError is an error whose message is shown as is but which matches a
// sentinel with errors.Is.
type statusError struct {
	kind error
	msg  string
}

func (e *statusError) Error() string        { return e.msg }
func (e *statusError) Is(target error) bool { return target == e.kind }

// Errorf returns an error that prints as the formatted message and matches
// kind (one of the sentinels above) with errors.Is. Use it when the
// sentinel's own text would only add noise to the {"Error":…} answer.
func Errorf(kind error, format string, a ...any) error {
	return &statusError{kind: kind, msg: fmt.Sprintf(format, a...)}
}
