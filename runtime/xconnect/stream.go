package xconnect

import (
	"errors"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// maxFDs is the most descriptors one message carries (the kernel's
// SCM_MAX_FD).
const maxFDs = 253

// copyFDs copies src to dst until src's EOF, passing on the descriptors
// (SCM_RIGHTS) that come with the bytes: each read's descriptors go with
// the first byte of the same bytes, as the sender attached them. pending
// are descriptors already read that go with the first bytes copied.
func copyFDs(dst, src *net.UnixConn, pending []int) error {
	defer func() { closeFDs(pending) }()
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(maxFDs*4))
	for {
		n, oobn, _, _, err := src.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			pending = append(pending, rights(oob[:oobn])...)
		}
		if n > 0 {
			if werr := writeFDs(dst, buf[:n], pending); werr != nil {
				return werr
			}
			closeFDs(pending)
			pending = nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if n == 0 && oobn == 0 {
			return nil
		}
	}
}

// writeFDs writes b to c, fds attached to its first byte.
func writeFDs(c *net.UnixConn, b []byte, fds []int) error {
	if len(fds) == 0 {
		_, err := c.Write(b)
		return err
	}
	n, _, err := c.WriteMsgUnix(b, unix.UnixRights(fds...), nil)
	if err != nil {
		return err
	}
	if n < len(b) {
		_, err = c.Write(b[n:])
	}
	return err
}

// rights returns the descriptors of the SCM_RIGHTS messages in oob.
func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if r, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, r...)
		}
	}
	return fds
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// proxyStream copies both ways, descriptors included, until both
// directions are done; each half-close is passed on.
func proxyStream(c, p *net.UnixConn, pending []int) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = copyFDs(p, c, pending)
		_ = p.CloseWrite()
	}()
	_ = copyFDs(c, p, nil)
	_ = c.CloseWrite()
	<-done
}
