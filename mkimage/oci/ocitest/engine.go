package ocitest

import (
	"bytes"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Engine is a Docker Engine API server on a unix socket that answers
// only what `--source local` asks: GET /images/<ref>/get, a docker save
// tarball of the image tagged ref, or 404 with the engine's error shape.
type Engine struct {
	srv    *http.Server
	images map[string][]byte
}

// ServeEngine listens on sock and serves images (ref → image).
func ServeEngine(sock string, images map[string]v1.Image) (*Engine, error) {
	e := &Engine{images: map[string][]byte{}}
	for ref, img := range images {
		t, err := name.NewTag(ref)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := tarball.Write(t, img, &b); err != nil {
			return nil, err
		}
		e.images[ref] = b.Bytes()
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	e.srv = &http.Server{Handler: http.HandlerFunc(e.serve)}
	go e.srv.Serve(l)
	return e, nil
}

func (e *Engine) serve(w http.ResponseWriter, r *http.Request) {
	ref, ok := strings.CutPrefix(r.URL.Path, "/images/")
	ref, ok2 := strings.CutSuffix(ref, "/get")
	if r.Method != http.MethodGet || !ok || !ok2 {
		http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
		return
	}
	b, found := e.images[ref]
	if !found {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"reference does not exist"}`))
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Write(b)
}

// Close stops the server.
func (e *Engine) Close() error { return e.srv.Close() }
