package ctrl

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"sync"
	"time"
)

// unsupportedProtocol is the body a peer that does not speak HTTP gets
// (spec §5, with upstream's spacing).
const unsupportedProtocol = `{"Error": "Unsupported protocol"}`

// unsupportedResponse is the whole answer to such a peer: a 400 with the
// JSON body, instead of net/http's plain-text "400 Bad Request".
var unsupportedResponse = "HTTP/1.1 400 Bad Request\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Length: " + strconv.Itoa(len(unsupportedProtocol)) + "\r\n" +
	"Connection: close\r\n\r\n" + unsupportedProtocol

// maxRequestLine bounds how far the first line is looked at.
const maxRequestLine = 8192

// protoListener checks the first line of every connection: a peer that
// does not start with an HTTP/1.x request line ("METHOD URI HTTP/1.x")
// gets a 400 with {"Error": "Unsupported protocol"} and is closed, as
// upstream does.
type protoListener struct{ net.Listener }

// Accept implements net.Listener.
func (l protoListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &protoConn{Conn: c, r: bufio.NewReaderSize(c, maxRequestLine)}, nil
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
			c.Conn.Write([]byte(unsupportedResponse))
			c.Conn.Close()
		}
	})
	if c.bad {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

// looksHTTP reports whether the stream starts with an HTTP/1.x request
// line: a method token, a space, a target without spaces, a space and
// "HTTP/1.". A peer that sends nothing and closes is left to the HTTP
// server.
func looksHTTP(r *bufio.Reader) bool {
	inMethod := true
	for n := 1; ; n++ {
		b, err := r.Peek(n)
		if err != nil {
			// EOF, timeout or a line longer than the buffer.
			return n == 1 && len(b) == 0
		}
		ch := b[n-1]
		switch {
		case ch == '\n':
			return requestLine(bytes.TrimRight(b, "\r\n"))
		case !inMethod:
		case ch == ' ' && n > 1:
			inMethod = false
		case !tokenChar(ch) || n > 16:
			// Not a method token: reject without waiting for a newline.
			return false
		}
	}
}

// requestLine reports whether line is "METHOD TARGET HTTP/1.x".
func requestLine(line []byte) bool {
	parts := bytes.Split(line, []byte(" "))
	if len(parts) != 3 || len(parts[0]) == 0 || len(parts[1]) == 0 {
		return false
	}
	for _, ch := range parts[0] {
		if !tokenChar(ch) {
			return false
		}
	}
	return bytes.HasPrefix(parts[2], []byte("HTTP/1."))
}

func tokenChar(ch byte) bool {
	return ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch == '-' || ch == '_'
}
