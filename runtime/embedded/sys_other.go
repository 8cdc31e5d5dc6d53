//go:build !linux

package embedded

import (
	"context"
	"log/slog"
)

// Do is not supported outside Linux.
func (m Mount) Do() error { return ErrUnsupported }

// MountAll is not supported outside Linux.
func MountAll(ms []Mount) error { return ErrUnsupported }

// Reap is not supported outside Linux.
func Reap(ctx context.Context, log *slog.Logger) {}

// Reboot is not supported outside Linux.
func Reboot(cmd RebootCmd) error { return ErrUnsupported }

// KernelRelease is not supported outside Linux.
func KernelRelease() (string, error) { return "", ErrUnsupported }
