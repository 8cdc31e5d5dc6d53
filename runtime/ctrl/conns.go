package ctrl

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
)

// Connection limits (issue 11, defect 6). The socket is world-writable by
// design, so any container can connect: without a bound one of them
// exhausts the daemon's file descriptors with idle connections.
const (
	// DefaultMaxConns bounds the open connections of all callers.
	DefaultMaxConns = 256
	// DefaultMaxCallerConns bounds the open connections of one caller
	// without the mgmt role (unknown callers share one bound).
	DefaultMaxCallerConns = 16
	// DefaultReservedConns of DefaultMaxConns are kept for the host and
	// mgmt callers: other callers together get the rest.
	DefaultReservedConns = 64
)

// conns admits connections at accept and counts them until they close.
// Its own mutex guards it; nothing blocks under it.
type conns struct {
	max, perCaller, reserved int
	log                      *slog.Logger

	mu      sync.Mutex
	total   int
	caller  map[string]int      // open connections per non-mgmt caller
	open    map[net.Conn]string // admitted connection → its caller key
	warned  map[string]bool     // caller whose refusals were logged
	refused int                 // refused connections (tests, figures)
}

func newConns(o Options, log *slog.Logger) *conns {
	c := &conns{max: o.MaxConns, perCaller: o.MaxCallerConns, reserved: o.ReservedConns, log: log,
		caller: map[string]int{}, open: map[net.Conn]string{}, warned: map[string]bool{}}
	if c.max <= 0 {
		c.max = DefaultMaxConns
	}
	if c.perCaller <= 0 {
		c.perCaller = DefaultMaxCallerConns
	}
	if c.reserved <= 0 {
		c.reserved = min(DefaultReservedConns, c.max/4)
	}
	c.reserved = min(c.reserved, c.max-1)
	return c
}

// privileged callers (the host and mgmt platforms) are bounded only by
// the total and may use the reserve.
const privileged = "\x00mgmt"

// admit counts nc for caller, or reports false when a limit is reached.
func (c *conns) admit(nc net.Conn, caller Caller, err error) bool {
	key := caller.Name // "" for unknown callers: they share one bound
	if err == nil && caller.Mgmt {
		key = privileged
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var why string
	switch {
	case c.total >= c.max:
		why = "too many connections"
	case key != privileged && c.total >= c.max-c.reserved:
		why = "too many connections from non-mgmt callers"
	case key != privileged && c.caller[key] >= c.perCaller:
		why = "too many connections from this caller"
	}
	if why != "" {
		c.refused++
		if !c.warned[key] {
			// Once per caller until one of its connections closes: a
			// flood must not flood the log as well.
			c.warned[key] = true
			c.log.Warn("ctrl: connection refused", "caller", caller.Name, "pid", caller.Pid, "reason", why, "open", c.total)
		}
		return false
	}
	c.total++
	if key != privileged {
		c.caller[key]++
	}
	c.open[nc] = key
	return true
}

// release uncounts nc (any number of times).
func (c *conns) release(nc net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, ok := c.open[nc]
	if !ok {
		return
	}
	delete(c.open, nc)
	c.total--
	if key != privileged {
		if c.caller[key]--; c.caller[key] == 0 {
			delete(c.caller, key)
		}
	}
	delete(c.warned, key)
}

// connContext runs in http.Server's accept loop, before the connection
// is served: the peer is identified now and bound to the connection, and a
// caller over its limits is closed at once.
func (h *Handler) connContext(ctx context.Context, nc net.Conn) context.Context {
	caller, err := h.identify(nc)
	if h.accepted != nil {
		h.accepted(caller, err)
	}
	if !h.conns.admit(nc, caller, err) {
		nc.Close()
		return ctx
	}
	return context.WithValue(ctx, connKey{}, &connCaller{caller: caller, err: err})
}

// connState releases a connection's slot once the server is done with it.
func (h *Handler) connState(nc net.Conn, s http.ConnState) {
	if s == http.StateClosed || s == http.StateHijacked {
		h.conns.release(nc)
	}
}
