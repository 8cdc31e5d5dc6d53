package pvrsdk

import (
	"net"
	"sync"
)

// DefaultMaxConns bounds the open connections of the server: the API is
// for a few developers' tools, and a flood must not exhaust the container.
const DefaultMaxConns = 32

// LimitListener returns a listener that holds at most n accepted
// connections open; Accept waits for one to close beyond that.
func LimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
