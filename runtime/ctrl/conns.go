package ctrl

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
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
	// DefaultMaxMgmtConns bounds the open connections of one mgmt
	// platform, and DefaultHostReservedConns of the reserve are the
	// host's alone: a runaway mgmt container cannot lock pvcontrol out.
	DefaultMaxMgmtConns      = 32
	DefaultHostReservedConns = 8
	// warnEvery spaces the refusal warnings of one caller, so a flood
	// does not flood the log as well.
	warnEvery = time.Minute
)

// conns admits connections at accept and counts them until they close.
// Its own mutex guards it; nothing blocks under it.
type conns struct {
	max, perCaller, reserved int
	perMgmt, hostReserved    int
	log                      *slog.Logger

	mu      sync.Mutex
	total   int
	caller  map[string]int      // open connections per caller but the host
	open    map[net.Conn]string // admitted connection → its caller key
	warned  map[string]warning  // refusals per caller since its last warning
	refused int                 // refused connections (tests, figures)
}

// warning is when a caller's refusals were last logged and how many
// came since.
type warning struct {
	at      time.Time
	dropped int
}

func newConns(o Options, log *slog.Logger) *conns {
	c := &conns{max: o.MaxConns, perCaller: o.MaxCallerConns, reserved: o.ReservedConns,
		perMgmt: o.MaxMgmtConns, hostReserved: o.HostReservedConns, log: log,
		caller: map[string]int{}, open: map[net.Conn]string{}, warned: map[string]warning{}}
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
	if c.perMgmt <= 0 {
		c.perMgmt = DefaultMaxMgmtConns
	}
	if c.hostReserved <= 0 {
		c.hostReserved = min(DefaultHostReservedConns, c.reserved/2)
	}
	return c
}

// hostKey counts the host's connections: it is bounded only by the total.
const hostKey = "\x00host"

// admit counts nc for caller, or reports false when a limit is reached.
// Callers without the mgmt role share what the reserve leaves, each within
// its own bound (unknown callers share one); a mgmt platform has a larger
// bound and the reserve but not the host's part of it.
func (c *conns) admit(nc net.Conn, caller Caller, err error) bool {
	key := caller.Name // "" for unknown callers
	mgmt := err == nil && caller.Mgmt
	if mgmt && caller.Name == HostName {
		key = hostKey
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var why string
	switch {
	case c.total >= c.max:
		why = "too many connections"
	case key == hostKey:
	case mgmt && c.total >= c.max-c.hostReserved:
		why = "too many connections from mgmt callers"
	case mgmt && c.caller[key] >= c.perMgmt:
		why = "too many connections from this caller"
	case !mgmt && c.total >= c.max-c.reserved:
		why = "too many connections from non-mgmt callers"
	case !mgmt && c.caller[key] >= c.perCaller:
		why = "too many connections from this caller"
	}
	if why != "" {
		c.refused++
		w := c.warned[key]
		w.dropped++
		if now := time.Now(); now.Sub(w.at) >= warnEvery {
			c.log.Warn("ctrl: connection refused", "caller", caller.Name, "pid", caller.Pid, "reason", why,
				"open", c.total, "refused", w.dropped)
			w = warning{at: now}
		}
		c.warned[key] = w
		return false
	}
	c.total++
	if key != hostKey {
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
	if key != hostKey {
		if c.caller[key]--; c.caller[key] == 0 {
			delete(c.caller, key)
		}
	}
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
