package hub

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// Traffic is what one device cost the server: TCP connections, HTTP
// requests, and the bytes read and written on its connections (TLS
// records included, TCP/IP headers not): what a metered link bills.
type Traffic struct {
	Conns    int64 `json:"conns"`
	Requests int64 `json:"requests"`
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
}

// Meter counts Traffic per device. A connection belongs to the device
// whose token first authenticates a request on it; until then (a
// registration, a signed download on a fresh connection) its traffic is
// counted under "". Wire it with Listener and ConnContext, and give it to
// the Server in Options.Meter.
type Meter struct {
	mu     sync.Mutex
	closed map[string]Traffic // device -> traffic of its closed connections
	live   map[*meteredConn]struct{}
}

// NewMeter makes an empty Meter.
func NewMeter() *Meter {
	return &Meter{closed: map[string]Traffic{}, live: map[*meteredConn]struct{}{}}
}

type meteredConn struct {
	net.Conn
	m             *Meter
	in, out, reqs atomic.Int64
	device        atomic.Pointer[string]
	once          sync.Once
}

func (c *meteredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

func (c *meteredConn) Close() error {
	c.once.Do(func() {
		c.m.mu.Lock()
		delete(c.m.live, c)
		t := c.m.closed[c.owner()]
		c.m.closed[c.owner()] = c.add(t)
		c.m.mu.Unlock()
	})
	return c.Conn.Close()
}

func (c *meteredConn) owner() string {
	if d := c.device.Load(); d != nil {
		return *d
	}
	return ""
}

func (c *meteredConn) add(t Traffic) Traffic {
	t.Conns++
	t.Requests += c.reqs.Load()
	t.BytesIn += c.in.Load()
	t.BytesOut += c.out.Load()
	return t
}

type meterListener struct {
	net.Listener
	m *Meter
}

func (l meterListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	mc := &meteredConn{Conn: c, m: l.m}
	l.m.mu.Lock()
	l.m.live[mc] = struct{}{}
	l.m.mu.Unlock()
	return mc, nil
}

// Listener wraps l so that its connections are counted.
func (m *Meter) Listener(l net.Listener) net.Listener { return meterListener{l, m} }

type connKey struct{}

// ConnContext is http.Server.ConnContext: it lets requests find their
// connection (under TLS too).
func (m *Meter) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if mc, ok := c.(*meteredConn); ok {
		return context.WithValue(ctx, connKey{}, mc)
	}
	return ctx
}

func requestConn(r *http.Request) *meteredConn {
	mc, _ := r.Context().Value(connKey{}).(*meteredConn)
	return mc
}

// Snapshot is the traffic so far per device ("" unattributed), live
// connections included.
func (m *Meter) Snapshot() map[string]Traffic {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Traffic, len(m.closed))
	for d, t := range m.closed {
		out[d] = t
	}
	for c := range m.live {
		out[c.owner()] = c.add(out[c.owner()])
	}
	return out
}
