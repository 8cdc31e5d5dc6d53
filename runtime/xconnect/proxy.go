package xconnect

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
)

// Identity headers the rest plugin sets on every request.
const (
	HeaderClient = "X-PV-Client"
	HeaderRole   = "X-PV-Role"
)

// proxyUnix copies bytes both ways until both directions are done; each
// half-close is passed on, and so are file descriptors (SCM_RIGHTS) with
// the bytes they came with: Wayland's buffers, D-Bus's and any protocol's
// passed descriptors work through it.
func proxyUnix(_ ctrl.XConnectLink, c *net.UnixConn, dial func() (*net.UnixConn, error), log *slog.Logger) {
	p, err := dial()
	if err != nil {
		log.Warn("xconnect: dial provider", "err", err)
		return
	}
	defer p.Close()
	proxyStream(c, p, nil)
}

// proxyREST forwards HTTP/1.x requests of one consumer connection over one
// provider connection, in order, with the identity headers set from the
// link; whatever the consumer sent under those names (in any spelling,
// with "_" for "-" too) is dropped. A 101 Switching Protocols answer turns
// the connection into a byte stream.
func proxyREST(l ctrl.XConnectLink, c *net.UnixConn, dial func() (*net.UnixConn, error), log *slog.Logger) {
	cr, cw := bufio.NewReader(c), bufio.NewWriter(c)
	var p *net.UnixConn
	var pr *bufio.Reader
	var pw *bufio.Writer
	defer func() {
		if p != nil {
			p.Close()
		}
	}()
	for {
		req, err := http.ReadRequest(cr)
		if err != nil {
			if err != io.EOF {
				writeError(c, http.StatusBadRequest)
			}
			return
		}
		setIdentity(req.Header, l)
		if p == nil {
			if p, err = dial(); err != nil {
				log.Warn("xconnect: dial provider", "err", err)
				writeError(c, http.StatusBadGateway)
				return
			}
			pr, pw = bufio.NewReader(p), bufio.NewWriter(p)
		}
		err = req.Write(pw)
		if err == nil {
			err = pw.Flush()
		}
		if err != nil {
			log.Debug("xconnect: forward request", "err", err)
			return
		}
		resp, err := http.ReadResponse(pr, req)
		if err != nil {
			writeError(c, http.StatusBadGateway)
			return
		}
		err = resp.Write(cw)
		if err == nil {
			err = cw.Flush()
		}
		resp.Body.Close()
		if err != nil {
			return
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			go func() { _, _ = io.Copy(p, cr); _ = p.CloseWrite() }()
			_, _ = io.Copy(c, pr)
			return
		}
		if req.Close || resp.Close {
			return
		}
	}
}

// setIdentity replaces the identity headers of h with the link's.
func setIdentity(h http.Header, l ctrl.XConnectLink) {
	for k := range h {
		n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		if n == "x-pv-client" || n == "x-pv-role" {
			delete(h, k)
		}
	}
	h.Set(HeaderClient, l.Consumer)
	h.Set(HeaderRole, l.Role)
}

// writeError answers a request the proxy cannot forward.
func writeError(w io.Writer, code int) {
	resp := &http.Response{StatusCode: code, ProtoMajor: 1, ProtoMinor: 1, Close: true,
		Header: http.Header{"Content-Type": {"text/plain"}}}
	body := http.StatusText(code) + "\n"
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(strings.NewReader(body))
	_ = resp.Write(w)
}
