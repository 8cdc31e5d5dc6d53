//go:build !linux

package network

import (
	"errors"
	"net/netip"
)

var errNotLinux = errors.New("network: bridges need Linux")

// Bridge fails outside Linux.
func Bridge(name string, addr netip.Prefix) error { return errNotLinux }

// DeleteBridge fails outside Linux.
func DeleteBridge(name string) error { return errNotLinux }

func bridge(name string, addr netip.Prefix) (bool, error) { return false, errNotLinux }
