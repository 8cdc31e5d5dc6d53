package pvtx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
)

// State is the life-cycle state of a pvtx transaction or queue, with
// upstream's numeric values (they are stored in the .status file).
type State int32

// Transaction states.
const (
	StateError     State = 0 // ERROR
	StateSet       State = 1 // SET: a queue was created, no transaction yet
	StateActive    State = 2 // ACTIVE: begin succeeded
	StateAborted   State = 3 // ABORTED
	StateCommitted State = 4 // COMMITED (upstream spelling in the C enum)
	StateDeployed  State = 5 // DEPLOYED
)

// String returns upstream's name of the state.
func (s State) String() string {
	switch s {
	case StateError:
		return "ERROR"
	case StateSet:
		return "SET"
	case StateActive:
		return "ACTIVE"
	case StateAborted:
		return "ABORTED"
	case StateCommitted:
		return "COMMITED"
	case StateDeployed:
		return "DEPLOYED"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// pathMax is the size of upstream's char[] path fields (NUL included).
const pathMax = 4096

// Sizes of the .status file: the transaction part and the queue extension.
const (
	statusTxSize   = 4 + 4 + pathMax
	statusFullSize = statusTxSize + pathMax + 4 + 4
)

// status is the content of PVTXDIR/.status.
//
// The file keeps upstream's C layout so both implementations can read each
// other's state: int32 status, int32 is_local, char obj[4096], then
// char queue[4096], int32 count, int32 error. Upstream writes host byte
// order; we always write little endian (the byte order of every target we
// build for) and always write the queue part. Both sizes are accepted on
// read.
type status struct {
	State  State
	Local  bool
	Objdir string
	Queue  string
	Count  int32
	Err    int32
}

// active reports whether a transaction is open.
func (s status) active() bool { return s.State == StateActive }

// hasQueue reports whether a queue is configured.
func (s status) hasQueue() bool {
	return (s.State == StateSet || s.State == StateActive) && s.Queue != ""
}

func (s status) marshal() ([]byte, error) {
	if len(s.Objdir) >= pathMax || len(s.Queue) >= pathMax {
		return nil, fmt.Errorf("path longer than %d bytes", pathMax-1)
	}
	if bytes.IndexByte([]byte(s.Objdir+s.Queue), 0) >= 0 {
		return nil, errors.New("path contains NUL")
	}
	b := make([]byte, statusFullSize)
	binary.LittleEndian.PutUint32(b[0:], uint32(s.State))
	if s.Local {
		binary.LittleEndian.PutUint32(b[4:], 1)
	}
	copy(b[8:], s.Objdir)
	copy(b[statusTxSize:], s.Queue)
	binary.LittleEndian.PutUint32(b[statusTxSize+pathMax:], uint32(s.Count))
	binary.LittleEndian.PutUint32(b[statusTxSize+pathMax+4:], uint32(s.Err))
	return b, nil
}

// ErrBadStatus reports a corrupt .status file.
var ErrBadStatus = errors.New("corrupt .status file")

func unmarshalStatus(b []byte) (status, error) {
	var s status
	if len(b) != statusTxSize && len(b) != statusFullSize {
		return s, fmt.Errorf("%w: %d bytes, want %d or %d", ErrBadStatus, len(b), statusTxSize, statusFullSize)
	}
	s.State = State(binary.LittleEndian.Uint32(b[0:]))
	if s.State < StateError || s.State > StateDeployed {
		return s, fmt.Errorf("%w: status %d out of range", ErrBadStatus, int32(s.State))
	}
	local := binary.LittleEndian.Uint32(b[4:])
	if local > 1 {
		return s, fmt.Errorf("%w: is_local %d", ErrBadStatus, local)
	}
	s.Local = local == 1
	var err error
	if s.Objdir, err = cString(b[8:statusTxSize]); err != nil {
		return s, fmt.Errorf("%w: obj: %w", ErrBadStatus, err)
	}
	if len(b) == statusFullSize {
		if s.Queue, err = cString(b[statusTxSize : statusTxSize+pathMax]); err != nil {
			return s, fmt.Errorf("%w: queue: %w", ErrBadStatus, err)
		}
		s.Count = int32(binary.LittleEndian.Uint32(b[statusTxSize+pathMax:]))
		s.Err = int32(binary.LittleEndian.Uint32(b[statusTxSize+pathMax+4:]))
		if s.Count < 0 {
			return s, fmt.Errorf("%w: negative queue count", ErrBadStatus)
		}
	}
	return s, nil
}

func cString(b []byte) (string, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", errors.New("not NUL-terminated")
	}
	return string(b[:i]), nil
}

// readStatus returns the saved status; ok is false when there is none.
func readStatus(dir string) (s status, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, statusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return status{}, false, nil
	}
	if err != nil {
		return status{}, false, err
	}
	s, err = unmarshalStatus(b)
	return s, err == nil, err
}

func writeStatus(dir string, s status) error {
	b, err := s.marshal()
	if err != nil {
		return fmt.Errorf("save status: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, statusFile), b, 0o644)
}
