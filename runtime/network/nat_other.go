//go:build !linux

package network

import "net/netip"

func masquerade(bridge string, subnet netip.Prefix) error { return errNotLinux }

func unmasquerade(bridge string) error { return errNotLinux }
