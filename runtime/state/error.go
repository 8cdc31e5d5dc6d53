package state

import "errors"

// Error is the error returned by Parse: Key is the state key (or "" for the
// document as a whole) and Err describes the problem, prefixed by the field
// path inside the value when there is one.
type Error struct {
	Key string
	Err error
}

// Error returns "<key>: <problem>".
func (e *Error) Error() string {
	if e.Key == "" {
		return e.Err.Error()
	}
	return e.Key + ": " + e.Err.Error()
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// Sentinel problems, usable with errors.Is on errors returned by Parse,
// ValidKey and Canonical.
var (
	// ErrSyntax reports malformed JSON text.
	ErrSyntax = errors.New("invalid JSON")
	// ErrBadKey reports a state key that is not a clean relative path.
	ErrBadKey = errors.New("invalid state key")
	// ErrSpec reports a missing or unsupported #spec.
	ErrSpec = errors.New("unsupported #spec")
	// ErrBadSha reports an object value that is not a sha256 in lowercase hex.
	ErrBadSha = errors.New("object value must be a 64-character lowercase hex sha256")
	// ErrInvalid reports a value that is well-formed JSON but not a valid
	// setting; the wrapping message names the field.
	ErrInvalid = errors.New("invalid value")
	// ErrMissingRef reports a reference to a file that is not in the state.
	ErrMissingRef = errors.New("referenced file is not in the state")
	// ErrDuplicate reports a duplicated name (platform, group or JSON member).
	ErrDuplicate = errors.New("duplicate")
)
