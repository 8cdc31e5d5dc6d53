package ctrl

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// unsupportedProtocol is what a peer that does not speak HTTP gets.
const unsupportedProtocol = `{"Error":"Unsupported protocol"}`

// protoListener checks the first bytes of every connection: a peer that
// does not start with an HTTP request line ("TOKEN ") gets
// {"Error":"Unsupported protocol"} and is closed, as upstream does.
type protoListener struct{ net.Listener }

// Accept implements net.Listener.
func (l protoListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &protoConn{Conn: c, r: bufio.NewReader(c)}, nil
}

// protoConn checks the protocol on its first Read, so Accept never blocks
// on a slow peer.
type protoConn struct {
	net.Conn
	r    *bufio.Reader
	once sync.Once
	bad  bool
}

// NetConn returns the accepted connection (for SO_PEERCRED).
func (c *protoConn) NetConn() net.Conn { return c.Conn }

func (c *protoConn) Read(p []byte) (int, error) {
	c.once.Do(func() {
		if !looksHTTP(c.r) {
			c.bad = true
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.Conn.Write([]byte(unsupportedProtocol))
			c.Conn.Close()
		}
	})
	if c.bad {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

// looksHTTP reports whether the stream starts with an HTTP method token
// followed by a space. A peer that sends nothing or closes is left to the
// HTTP server.
func looksHTTP(r *bufio.Reader) bool {
	for n := 1; n <= 16; n++ {
		b, err := r.Peek(n)
		if err != nil {
			return true
		}
		ch := b[n-1]
		switch {
		case ch == ' ' && n > 1:
			return true
		case ch >= 'A' && ch <= 'Z', ch >= 'a' && ch <= 'z', ch == '-' || ch == '_':
		default:
			return false
		}
	}
	return false
}
