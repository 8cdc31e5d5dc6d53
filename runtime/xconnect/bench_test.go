package xconnect

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
)

// benchMesh serves echo and HTTP providers in a temp dir and injects
// links to them (this process is both consumer and provider); it returns
// the direct and proxied socket paths per type.
func benchMesh(b *testing.B) (direct, proxied map[string]string) {
	dir := b.TempDir()
	echoServer(b, dir+"/unix.sock")
	headerServer(b, dir+"/rest.sock")
	m := NewMesh(slog.New(slog.DiscardHandler), "")
	b.Cleanup(m.Close)
	links := []ctrl.XConnectLink{selfLink("unix", dir), selfLink("rest", dir)}
	if err := m.Reconcile(links); err != nil {
		b.Fatal(err)
	}
	direct, proxied = map[string]string{}, map[string]string{}
	for _, l := range links {
		direct[l.Type], proxied[l.Type] = l.Socket, l.Target
	}
	return direct, proxied
}

// BenchmarkUnixRoundTrip is the latency of a 64-byte echo on an open
// connection: direct to the provider, and through the unix plugin.
func BenchmarkUnixRoundTrip(b *testing.B) {
	direct, proxied := benchMesh(b)
	for _, tc := range []struct{ name, path string }{{"direct", direct["unix"]}, {"proxy", proxied["unix"]}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := net.Dial("unix", tc.path)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg, buf := make([]byte, 64), make([]byte, 64)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnixThroughput streams 1 MiB per op through the echo server
// (and back): direct, and through the unix plugin. MB/s counts one way.
func BenchmarkUnixThroughput(b *testing.B) {
	direct, proxied := benchMesh(b)
	const size = 1 << 20
	for _, tc := range []struct{ name, path string }{{"direct", direct["unix"]}, {"proxy", proxied["unix"]}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := net.Dial("unix", tc.path)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			chunk := make([]byte, 64<<10)
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				errc := make(chan error, 1)
				go func() {
					for sent := 0; sent < size; sent += len(chunk) {
						if _, err := c.Write(chunk); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
				if _, err := io.CopyN(io.Discard, c, size); err != nil {
					b.Fatal(err)
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRESTRequest is one GET on a kept-alive connection: direct to
// the provider, and through the rest plugin (headers rewritten).
func BenchmarkRESTRequest(b *testing.B) {
	direct, proxied := benchMesh(b)
	for _, tc := range []struct{ name, path string }{{"direct", direct["rest"]}, {"proxy", proxied["rest"]}} {
		b.Run(tc.name, func(b *testing.B) {
			path := tc.path
			cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			}, MaxIdleConnsPerHost: 1}}
			defer cl.CloseIdleConnections()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := cl.Get("http://localhost/who")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
