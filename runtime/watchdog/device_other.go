//go:build !linux

package watchdog

import "errors"

// OpenDevice returns an Opener that fails: watchdogs are a Linux device.
func OpenDevice(path string) Opener {
	return func() (Device, error) { return nil, errors.New("watchdog: " + path + ": only on Linux") }
}
