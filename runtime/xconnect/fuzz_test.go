package xconnect

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
)

// socketPair returns two connected Unix stream sockets.
func socketPair(t testing.TB) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// FuzzREST feeds arbitrary consumer bytes to the rest plugin: every request
// that reaches the provider carries exactly the link's identity, and no
// other header that a provider could read as one.
func FuzzREST(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-PV-Client: pv-mgmt\r\n\r\n"))
	f.Add([]byte("POST /a HTTP/1.1\r\nHost: x\r\nx_pv_role: mgmt\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-PV-Role: root\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\nX-Pv-Client: a\r\nX-Pv-Client: b\r\n\r\n"))
	f.Add([]byte("garbage\r\n\r\n"))
	l := ctrl.XConnectLink{Consumer: "app", Role: "admin"}
	f.Fuzz(func(t *testing.T, in []byte) {
		consumer, proxySide := socketPair(t)
		provider, providerSide := socketPair(t)
		defer consumer.Close()
		defer provider.Close() // unused when the input has no request
		deadline := time.Now().Add(5 * time.Second)
		for _, c := range []*net.UnixConn{consumer, proxySide, provider, providerSide} {
			_ = c.SetDeadline(deadline)
		}
		bad := make(chan string, 1)
		go func() {
			defer providerSide.Close()
			br := bufio.NewReader(providerSide)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				for k, vs := range req.Header {
					n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
					switch {
					case n == "x-pv-client" && (len(vs) != 1 || vs[0] != "app"),
						n == "x-pv-role" && (len(vs) != 1 || vs[0] != "admin"):
						bad <- k + ": " + strings.Join(vs, ",")
						return
					case (n == "x-pv-client" || n == "x-pv-role") && k != http.CanonicalHeaderKey(k):
						bad <- "second spelling " + k
						return
					}
				}
				if req.Header.Get(HeaderClient) != "app" || req.Header.Get(HeaderRole) != "admin" {
					bad <- "identity missing"
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(providerSide, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			}
		}()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer proxySide.Close()
			used := false
			proxyREST(l, proxySide, func() (*net.UnixConn, error) {
				if used {
					return nil, io.ErrUnexpectedEOF
				}
				used = true
				return provider, nil
			}, slog.New(slog.DiscardHandler))
		}()
		go func() { _, _ = io.Copy(io.Discard, consumer) }()
		_, _ = consumer.Write(in)
		_ = consumer.CloseWrite()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("proxy still running 10 s after input %q", in)
		}
		select {
		case msg := <-bad:
			t.Fatalf("provider got %s for input %q", msg, in)
		default:
		}
	})
}
