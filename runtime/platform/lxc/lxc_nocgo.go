//go:build !cgo || !linux

package lxc

import (
	"context"
	"log/slog"
	"os"
)

// Container is a started platform container (unavailable without cgo).
type Container struct{}

// Supported tells whether liblxc knows key; without cgo it accepts any key.
func Supported(key string) bool { return true }

// Start returns ErrNoCgo: this build has no liblxc.
func Start(ctx context.Context, log *slog.Logger, spec Spec) (*Container, error) {
	return nil, ErrNoCgo
}

// Pid returns 0.
func (c *Container) Pid() int { return 0 }

// TakePidFd returns nil.
func (c *Container) TakePidFd() *os.File { return nil }

// Name returns "".
func (c *Container) Name() string { return "" }

// Console returns nil.
func (c *Container) Console() *os.File { return nil }

// Done returns a closed channel.
func (c *Container) Done() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// Wait returns ErrNoCgo.
func (c *Container) Wait(ctx context.Context) error { return ErrNoCgo }

// Stop returns ErrNoCgo.
func (c *Container) Stop(ctx context.Context) error { return ErrNoCgo }

// Attach returns ErrNoCgo.
func Attach(lxcpath, name string, argv []string, env []string, stdin, stdout, stderr *os.File) (int, error) {
	return -1, ErrNoCgo
}

// Available returns ErrNoCgo: this build cannot run containers.
func Available() error { return ErrNoCgo }
