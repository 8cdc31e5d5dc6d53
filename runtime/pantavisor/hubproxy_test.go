package pantavisor

import (
	"bufio"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/config"
)

// connectProxy is an HTTP proxy on loopback that serves CONNECT tunnels
// only and counts them.
func connectProxy(t *testing.T) (addr string, tunnels *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tunnels = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil || req.Method != http.MethodConnect {
					io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
					return
				}
				up, err := net.Dial("tcp", req.Host)
				if err != nil {
					io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				defer up.Close()
				tunnels.Add(1)
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return l.Addr().String(), tunnels
}

// TestHubProxy: with PH_CREDS_PROXY_HOST/PORT the Hub is reached through
// a CONNECT tunnel of that proxy (TLS checked against
// PV_LIBTHHTTP_CERTSDIR); NOPROXYCONNECT=1 goes direct, and a bad port is
// not used.
func TestHubProxy(t *testing.T) {
	hub := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hub") }))
	defer hub.Close()
	certs := t.TempDir()
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hub.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(certs, "hub.pem"), pemCert, 0o644); err != nil {
		t.Fatal(err)
	}
	proxy, tunnels := connectProxy(t)
	host, port, _ := net.SplitHostPort(proxy)
	log := slog.New(slog.DiscardHandler)
	conf := func(kv ...string) *config.Config {
		c := config.New(log)
		if err := c.Set("PV_LIBTHHTTP_CERTSDIR", certs, config.PVConf); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(kv); i += 2 {
			if err := c.Set(kv[i], kv[i+1], config.PHConf); err != nil {
				t.Fatal(kv[i], err)
			}
		}
		return c
	}
	get := func(c *config.Config) {
		t.Helper()
		resp, err := hubHTTP(c, log).Get(hub.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hub" {
			t.Fatalf("body %q", b)
		}
	}
	get(conf("PH_CREDS_PROXY_HOST", host, "PH_CREDS_PROXY_PORT", port))
	if n := tunnels.Load(); n != 1 {
		t.Errorf("through the proxy: %d tunnels, want 1", n)
	}
	get(conf("PH_CREDS_PROXY_HOST", host, "PH_CREDS_PROXY_PORT", port, "PH_CREDS_PROXY_NOPROXYCONNECT", "1"))
	get(conf())
	if n := tunnels.Load(); n != 1 {
		t.Errorf("NOPROXYCONNECT=1 and no proxy: %d tunnels, want still 1", n)
	}
	for _, bad := range [][]string{{"PH_CREDS_PROXY_HOST", "user@evil", "PH_CREDS_PROXY_PORT", port}, {"PH_CREDS_PROXY_HOST", host, "PH_CREDS_PROXY_PORT", strconv.Itoa(70000)}} {
		if u, err := hubProxy(conf(bad...)); err == nil {
			t.Errorf("hubProxy(%v) = %v, want an error", bad, u)
		}
	}
}
