package logserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// pv-fd-log message layout: 4 iovecs, platform[50], source[50], int32
// level, int32 action (host order, little-endian on every target).
const (
	fdNameLen  = 50
	fdMsgLen   = 2*fdNameLen + 8
	fdActUnsub = 0
	fdActSub   = 1
)

// FdRequest is one pv-fd-log message.
type FdRequest struct {
	Platform, Source string
	Level            Level
	Subscribe        bool
}

// ErrBadFdRequest is returned for a malformed pv-fd-log message.
var ErrBadFdRequest = errors.New("bad pv-fd-log request")

// ParseFdRequest decodes the 108 bytes of a pv-fd-log message.
func ParseFdRequest(b []byte) (FdRequest, error) {
	if len(b) != fdMsgLen {
		return FdRequest{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadFdRequest, len(b), fdMsgLen)
	}
	cstr := func(p []byte) string {
		if i := bytes.IndexByte(p, 0); i >= 0 {
			p = p[:i]
		}
		return string(p)
	}
	r := FdRequest{Platform: cstr(b[:fdNameLen]), Source: cstr(b[fdNameLen : 2*fdNameLen])}
	lvl := int32(binary.LittleEndian.Uint32(b[2*fdNameLen:]))
	act := int32(binary.LittleEndian.Uint32(b[2*fdNameLen+4:]))
	if r.Platform == "" || r.Source == "" {
		return FdRequest{}, fmt.Errorf("%w: platform and source are required", ErrBadFdRequest)
	}
	if act != fdActSub && act != fdActUnsub {
		return FdRequest{}, fmt.Errorf("%w: action %d: want 0 or 1", ErrBadFdRequest, act)
	}
	r.Level = Level(lvl).clamp()
	r.Subscribe = act == fdActSub
	return r, nil
}

// AppendFdRequest encodes r as a pv-fd-log message (names cut at 49 bytes
// to keep their NUL terminator).
func AppendFdRequest(dst []byte, r FdRequest) []byte {
	name := func(s string) []byte {
		var b [fdNameLen]byte
		copy(b[:fdNameLen-1], s)
		return b[:]
	}
	dst = append(dst, name(r.Platform)...)
	dst = append(dst, name(r.Source)...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(int32(r.Level)))
	act := int32(fdActUnsub)
	if r.Subscribe {
		act = fdActSub
	}
	return binary.LittleEndian.AppendUint32(dst, uint32(act))
}

// SendFd sends a pv-fd-log request over c; f is passed with SCM_RIGHTS
// (nil for an unsubscribe).
func SendFd(c *net.UnixConn, f *os.File, r FdRequest) error {
	var oob []byte
	if f != nil {
		raw, err := f.SyscallConn()
		if err != nil {
			return fmt.Errorf("pv-fd-log send: %w", err)
		}
		if err := raw.Control(func(fd uintptr) { oob = unix.UnixRights(int(fd)) }); err != nil {
			return fmt.Errorf("pv-fd-log send: %w", err)
		}
	}
	if _, _, err := c.WriteMsgUnix(AppendFdRequest(nil, r), oob, nil); err != nil {
		return fmt.Errorf("pv-fd-log send: %w", err)
	}
	return nil
}

func (s *Server) serveFd(ctx context.Context, c *net.UnixConn) {
	buf := make([]byte, fdMsgLen)
	oob := make([]byte, unix.CmsgSpace(4*8))
	for {
		got := 0
		var fds []int
		for got < fdMsgLen {
			n, oobn, _, _, err := c.ReadMsgUnix(buf[got:], oob)
			fds = append(fds, parseRights(oob[:oobn])...)
			got += n
			if err != nil || (n == 0 && oobn == 0) {
				closeFds(fds)
				return
			}
		}
		req, err := ParseFdRequest(buf)
		if err != nil {
			s.bad.Add(1)
			closeFds(fds)
			continue
		}
		if !req.Subscribe {
			closeFds(fds)
			s.Unsubscribe(req.Platform, req.Source)
			continue
		}
		if len(fds) == 0 {
			s.bad.Add(1)
			continue
		}
		closeFds(fds[1:])
		fd := fds[0]
		unix.SetNonblock(fd, true)
		f := os.NewFile(uintptr(fd), req.Platform+"/"+req.Source)
		s.Subscribe(f, req.Platform, req.Source, req.Level)
		if ctx.Err() != nil {
			return
		}
	}
}

func parseRights(oob []byte) []int {
	if len(oob) == 0 {
		return nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if f, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
