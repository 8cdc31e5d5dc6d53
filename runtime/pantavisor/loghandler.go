package pantavisor

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
)

// teeHandler sends records to several handlers: the daemon's own logger
// and the log server, so pantavisor's messages land in logs/<rev>/.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

// switchHandler sends records to the log server until it is closed, then
// to the daemon's own handler. It replaces teeHandler when the log server
// prints pantavisor's records on stdout itself (an image's console), so
// each record is printed once and the last ones, after the log server is
// gone, still are.
type switchHandler struct {
	logs, base slog.Handler
	closed     *atomic.Bool
}

func (s switchHandler) pick() slog.Handler {
	if s.closed.Load() {
		return s.base
	}
	return s.logs
}

func (s switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return s.pick().Enabled(ctx, l)
}

func (s switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return s.pick().Handle(ctx, r)
}

func (s switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return switchHandler{s.logs.WithAttrs(as), s.base.WithAttrs(as), s.closed}
}

func (s switchHandler) WithGroup(name string) slog.Handler {
	return switchHandler{s.logs.WithGroup(name), s.base.WithGroup(name), s.closed}
}
