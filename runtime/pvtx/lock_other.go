//go:build !unix

package pvtx

// Lock is a no-op where flock(2) does not exist.
func (t *Tx) Lock() (func(), error) { return func() {}, nil }
