//go:build !linux

package kmod

// OpenUevents is not supported outside Linux.
func OpenUevents() (UeventSource, error) { return nil, errUnsupported }
