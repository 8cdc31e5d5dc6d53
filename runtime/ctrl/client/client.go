// Package client talks to Pantavisor's control socket (pv-ctrl): HTTP/1.1
// over a unix stream socket, with the Host header "localhost" as the server
// requires. It is shared by pvtx and pvcontrol.
//
//	c := client.New("") // first existing socket of Sockets()
//	var steps []map[string]any
//	if err := c.JSON(ctx, "GET", "/steps", nil, &steps); err != nil { … }
//
//	f, _ := os.Open(obj)
//	fi, _ := f.Stat()
//	resp, err := c.Do(ctx, "PUT", "/objects/"+sha, f, fi.Size())
//
// Non-2xx answers become *APIError carrying the status code and the
// message of upstream's `{"Error":"…"}` body (or the raw body text when it
// is not that shape).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

// ErrNoSocket is returned when no socket was given and none of Sockets()
// exists.
var ErrNoSocket = errors.New("no pv-ctrl socket found")

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Sockets returns the pv-ctrl socket paths in upstream's detection order:
// the shipped configs' run dir, the compiled-in default, and the path seen
// from inside containers.
func Sockets() []string {
	return []string{"/run/pantavisor/pv/pv-ctrl", "/pv/pv-ctrl", "/pantavisor/pv-ctrl"}
}

// Detect returns the first path of candidates that exists and is a socket,
// or ErrNoSocket.
func Detect(candidates []string) (string, error) {
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (tried %s)", ErrNoSocket, strings.Join(candidates, ", "))
}

// APIError is a non-2xx answer of pv-ctrl.
type APIError struct {
	// Status is the HTTP status code (upstream may even answer 1).
	Status int
	// Message is the "Error" field of the JSON body, or the trimmed body
	// text when the body is not of that shape.
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("pv-ctrl: status %d", e.Status)
	}
	return fmt.Sprintf("pv-ctrl: status %d: %s", e.Status, e.Message)
}

// Client is a pv-ctrl client. The zero value is not usable; use New.
// A Client is safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client for the socket at path. With path "" the socket is
// detected on each request as the first existing entry of Sockets().
func New(path string) *Client {
	c := &Client{socket: path}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			p, err := c.Socket()
			if err != nil {
				return nil, err
			}
			var d net.Dialer
			return d.DialContext(ctx, "unix", p)
		},
		DisableCompression: true,
		MaxIdleConns:       1,
	}
	c.hc = &http.Client{Transport: tr}
	return c
}

// Socket returns the socket path in use, detecting it if New got "".
func (c *Client) Socket() (string, error) {
	if c.socket != "" {
		return c.socket, nil
	}
	return Detect(Sockets())
}

// Do sends one request. path is the URL path ("/steps/current"). body may
// be nil; contentLength is its exact size (sent as Content-Length, which
// pv-ctrl's streaming endpoints rely on) or -1 for chunked encoding.
//
// On a 2xx answer the caller owns resp.Body and must close it. Any other
// status is returned as *APIError with the body already consumed.
func (c *Client) Do(ctx context.Context, method, path string, body io.Reader, contentLength int64) (*http.Response, error) {
	if body == nil || contentLength == 0 {
		body = http.NoBody
		contentLength = 0
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Host = "localhost"
	req.ContentLength = contentLength
	if contentLength > 0 {
		// Keep the body streaming: wrap readers net/http would otherwise
		// inspect (bytes.Reader etc. are fine, files are fine too).
		req.Body = io.NopCloser(body)
		req.GetBody = nil
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return resp, nil
}

func readAPIError(resp *http.Response) *APIError {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Status: resp.StatusCode}
	var body struct {
		Error *string `json:"Error"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error != nil {
		e.Message = *body.Error
	} else {
		e.Message = strings.TrimSpace(string(data))
	}
	return e
}

// JSON sends in (JSON-encoded, unless nil) and decodes a 2xx answer into
// out (unless nil; an empty body leaves out untouched).
func (c *Client) JSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	var n int64
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body, n = bytes.NewReader(data), int64(len(data))
	}
	resp, err := c.Do(ctx, method, path, body, n)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}
