//go:build !linux

package kmod

import "errors"

// errUnsupported is returned by the system calls on non-Linux systems.
var errUnsupported = errors.New("kmod: not supported on this OS")

func finit(path, params string) error { return errUnsupported }
func remove(name string) error        { return errUnsupported }
func isExist(error) bool              { return false }
func isNotApplicable(error) bool      { return false }
func kernelRelease() (string, error)  { return "", errUnsupported }
