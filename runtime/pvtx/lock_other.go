//go:build !unix

package pvtx

import "context"

// Lock is a no-op where flock(2) does not exist.
func (t *Tx) Lock() (func(), error) { return func() {}, nil }

// LockContext is a no-op where flock(2) does not exist.
func (t *Tx) LockContext(context.Context) (func(), error) { return func() {}, nil }
