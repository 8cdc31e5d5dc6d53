package xconnect

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"

	"golang.org/x/sys/unix"
)

// proxyDBus serves one consumer connection of a dbus link. dial connects
// to the provider's bus with the credentials of the link's role and
// returns the role's uid as the provider knows it; the consumer's
// authentication is rewritten to claim that uid (saslRewriter), so the
// bus's EXTERNAL check (claimed uid = socket credentials) passes for the
// role and for nothing else, and its XML policy applies to the role.
// After BEGIN the connection is a byte stream, descriptors included
// (NEGOTIATE_UNIX_FD passes).
func proxyDBus(c *net.UnixConn, dial func() (*net.UnixConn, uint32, error), log *slog.Logger) {
	p, uid, err := dial()
	if err != nil {
		log.Warn("xconnect: dbus: dial provider", "err", err)
		return
	}
	defer p.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = copyFDs(c, p, nil)
		_ = c.CloseWrite()
	}()
	rest, fds, err := authenticate(c, p, newSASLRewriter(uid))
	if err != nil {
		if !errors.Is(err, io.EOF) {
			log.Info("xconnect: dbus: authentication", "err", err)
		}
		p.Close()
		c.Close()
		<-done
		return
	}
	if len(rest) > 0 {
		err = writeFDs(p, rest, fds)
		closeFDs(fds)
		fds = nil
	}
	if err == nil {
		_ = copyFDs(p, c, fds)
	}
	_ = p.CloseWrite()
	<-done
}

// authenticate passes the consumer's NUL byte and authentication lines
// to p through rw until BEGIN. It returns what the consumer sent after
// BEGIN and the descriptors that came with it.
func authenticate(c, p *net.UnixConn, rw saslRewriter) (rest []byte, fds []int, err error) {
	var buf []byte
	tmp := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(maxFDs*4))
	nul := false
	for {
		for {
			if !nul {
				if len(buf) == 0 {
					break
				}
				if buf[0] != 0 {
					closeFDs(fds)
					return nil, nil, errSASL
				}
				if _, err := p.Write([]byte{0}); err != nil {
					closeFDs(fds)
					return nil, nil, err
				}
				buf, nul = buf[1:], true
				continue
			}
			i := bytes.Index(buf, []byte("\r\n"))
			if i < 0 {
				if len(buf) > maxSASLLine {
					closeFDs(fds)
					return nil, nil, errSASL
				}
				break
			}
			toP, toC, begin := rw.line(string(buf[:i]))
			buf = buf[i+2:]
			if toC != "" {
				if _, err := io.WriteString(c, toC); err != nil {
					closeFDs(fds)
					return nil, nil, err
				}
			}
			if toP != "" {
				if _, err := io.WriteString(p, toP); err != nil {
					closeFDs(fds)
					return nil, nil, err
				}
			}
			if begin {
				return buf, fds, nil
			}
		}
		n, oobn, _, _, err := c.ReadMsgUnix(tmp, oob)
		if oobn > 0 {
			fds = append(fds, rights(oob[:oobn])...)
		}
		buf = append(buf, tmp[:n]...)
		if err == nil && n == 0 && oobn == 0 {
			err = io.EOF
		}
		if err != nil {
			closeFDs(fds)
			return nil, nil, err
		}
	}
}
