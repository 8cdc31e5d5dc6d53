package logserver

import (
	"context"
	"errors"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// flushDelay is how long an unterminated text message waits for the rest
// of its bytes before it is logged as it is.
const flushDelay = 50 * time.Millisecond

// peerPID returns the SO_PEERCRED pid of c, or -1.
func peerPID(c *net.UnixConn) int32 {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1
	}
	pid := int32(-1)
	raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = cred.Pid
		}
	})
	return pid
}

// ctrlConn is the per-client state of pv-ctrl-log.
type ctrlConn struct {
	pid      int32
	platform string // resolved on first text message
}

func (s *Server) serveCtrl(ctx context.Context, c *net.UnixConn) {
	cc := &ctrlConn{pid: peerPID(c)}
	sp := newSplitter(s.o.MaxLine, s.o.MaxFrame)
	for {
		if sp.pending() {
			c.SetReadDeadline(time.Now().Add(flushDelay))
		} else {
			c.SetReadDeadline(time.Time{})
		}
		space := sp.space()
		if len(space) == 0 {
			s.bad.Add(1)
			return
		}
		n, err := c.Read(space)
		sp.added(n)
		timeout := err != nil && errors.Is(err, os.ErrDeadlineExceeded)
		for {
			m, ok, ferr := sp.next(err != nil)
			if ferr != nil {
				s.bad.Add(1)
				s.log.Debug("pv-ctrl-log: dropping client", "pid", cc.pid, "err", ferr)
				return
			}
			if !ok {
				break
			}
			s.handleCtrl(cc, m)
		}
		if err != nil && !timeout {
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (s *Server) handleCtrl(cc *ctrlConn, m message) {
	if m.truncated {
		s.truncated.Add(1)
	}
	if !m.binary {
		e, _, err := ParseText(m.data)
		if err != nil {
			s.bad.Add(1)
			return
		}
		if cc.platform == "" {
			cc.platform = s.resolve(cc.pid)
			if cc.platform == "" || cc.platform == "_pv_" {
				cc.platform = PlatformPantavisor
			}
		}
		// The upstream docs say RFC messages use their HOSTNAME; the code
		// uses the cgroup, which a container cannot forge. HOSTNAME (the
		// container's uts name) only fills in for an unknown cgroup.
		if cc.platform != PlatformUnknown || e.Platform == "" {
			e.Platform = cc.platform
		}
		s.dispatch(e)
		return
	}
	switch m.code {
	case CodeLegacy:
		e, err := ParseLegacy(m.data)
		if err != nil {
			s.bad.Add(1)
			return
		}
		if e.Platform == "_pv_" {
			e.Platform = PlatformPantavisor
		}
		s.dispatch(e)
	case CodeCmd:
		if cc.pid != s.o.MainPID {
			s.bad.Add(1)
			s.log.Warn("pv-ctrl-log: command refused: sender is not pantavisor", "pid", cc.pid)
			return
		}
		cmd, err := ParseCmd(m.data)
		if err != nil {
			s.bad.Add(1)
			return
		}
		s.runCmd(cmd)
	}
}

// runCmd executes a CMD frame.
func (s *Server) runCmd(c Command) {
	switch c.Code {
	case CmdExit:
		go s.Close()
	case CmdStartUpdate:
		s.StartUpdate(c.Data)
	case CmdStopUpdate:
		s.StopUpdate()
	case CmdTransition:
		s.SetRevision(c.Data)
	}
}
