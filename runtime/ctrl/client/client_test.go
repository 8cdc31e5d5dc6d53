package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve starts an HTTP server on a unix socket in a temp dir.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "pv-ctrl")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestDo(t *testing.T) {
	var gotHost, gotTE string
	var gotLen int64
	var gotBody string
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotLen = r.Host, r.ContentLength
		gotTE = strings.Join(r.TransferEncoding, ",")
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"a":1}`)
		case "/err":
			w.WriteHeader(422)
			io.WriteString(w, `{"Error":"Object has bad checksum"}`)
		case "/plain":
			w.WriteHeader(400)
			io.WriteString(w, "unknown endpoint: /plain\n")
		}
	}))
	c := New(sock)
	ctx := context.Background()

	// Streaming body with an explicit length: a pipe has no length net/http
	// could find on its own.
	pr, pw := io.Pipe()
	go func() { io.WriteString(pw, "hello world"); pw.Close() }()
	resp, err := c.Do(ctx, "PUT", "/ok", pr, 11)
	if err != nil {
		t.Fatalf("Do(PUT /ok) = %v", err)
	}
	resp.Body.Close()
	if gotHost != "localhost" || gotLen != 11 || gotTE != "" || gotBody != "hello world" {
		t.Errorf("server saw host %q len %d te %q body %q, want localhost 11 \"\" hello world", gotHost, gotLen, gotTE, gotBody)
	}

	var out map[string]int
	if err := c.JSON(ctx, "GET", "/ok", nil, &out); err != nil || out["a"] != 1 {
		t.Errorf("JSON(GET /ok) = %v, %v, want map[a:1]", out, err)
	}
	if err := c.JSON(ctx, "PUT", "/ok", map[string]string{"action": "stop"}, nil); err != nil {
		t.Errorf("JSON(PUT /ok) = %v", err)
	}
	if gotBody != `{"action":"stop"}` || gotLen != int64(len(gotBody)) {
		t.Errorf("JSON body = %q (len %d), want {\"action\":\"stop\"}", gotBody, gotLen)
	}

	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/err", 422, "Object has bad checksum"},
		{"/plain", 400, "unknown endpoint: /plain"},
	} {
		_, err := c.Do(ctx, "GET", tc.path, nil, 0)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != tc.status || ae.Message != tc.msg {
			t.Errorf("Do(GET %s) = %v, want APIError %d %q", tc.path, err, tc.status, tc.msg)
		}
	}
}

func TestDetect(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	sock := serve(t, http.NotFoundHandler())
	missing := filepath.Join(dir, "missing")

	got, err := Detect([]string{missing, file, sock})
	if err != nil || got != sock {
		t.Errorf("Detect = %q, %v, want %q", got, err, sock)
	}
	if _, err := Detect([]string{missing, file}); !errors.Is(err, ErrNoSocket) {
		t.Errorf("Detect(no socket) = %v, want ErrNoSocket", err)
	}
	want := []string{"/run/pantavisor/pv/pv-ctrl", "/pv/pv-ctrl", "/pantavisor/pv-ctrl"}
	if got := Sockets(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Sockets() = %v, want %v", got, want)
	}
}

func TestNoServer(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "nothing"))
	if _, err := c.Do(context.Background(), "GET", "/steps", nil, 0); err == nil {
		t.Errorf("Do against a missing socket = nil error, want one")
	}
}
