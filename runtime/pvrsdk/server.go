// Package pvrsdk is the HTTP server of the pvr-sdk platform container:
// local access to a device on port 12368 for the tools people already
// have. It speaks to Pantavisor only through pv-ctrl.
//
//	/cgi-bin/pvr/...   pvr's remote protocol: pvr clone/get/post <ip>
//	/cgi-bin/pvtx/...  the pvtx API (begin, add, remove, commit, run, …)
//	/cgi-bin/logs      the logs of a revision by source, with follow
//	/app/              the device web UI (files embedded in the program)
//
//	s, err := pvrsdk.New(pvrsdk.Options{Client: client.New(""), PvtxDir: dir, LogDir: "/pantavisor/logs"})
//	http.Serve(ln, s)
package pvrsdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
	"github.com/pantavisor/pantavisor-go/runtime/pvtx"
)

// Body limits.
const (
	// MaxState bounds a posted state (pv-ctrl's own limit is the same).
	MaxState = 32 << 20
	// maxSmall bounds small JSON bodies (object records, user metadata).
	maxSmall = 64 << 10
	// DefaultMaxPackage bounds a pvtx add body.
	DefaultMaxPackage = 4 << 30
)

// Options configure a Server.
type Options struct {
	// Client reaches pv-ctrl.
	Client *client.Client
	// PvtxDir holds the pvtx API's transaction.
	PvtxDir string
	// LogDir is the log tree of the device (/pantavisor/logs in a mgmt
	// container): <rev>/<source>/….
	LogDir string
	// MaxPackage bounds a pvtx add body (0 = DefaultMaxPackage).
	MaxPackage int64
	// Log receives request errors; nil discards them.
	Log *slog.Logger
	// Now names revisions (tests); nil = time.Now.
	Now func() time.Time
	// Poll is the follow interval of the logs API (0 = 500 ms).
	Poll time.Duration
}

// Server serves the pvr-sdk HTTP API. It is an http.Handler.
type Server struct {
	o   Options
	c   *client.Client
	tx  *pvtx.Tx
	mux *http.ServeMux
	// txBusy lets one pvtx request run at a time: a second one is refused
	// at once instead of waiting behind a long upload.
	txBusy sync.Mutex
}

// route is one entry of the route table.
type route struct {
	method, path string
	serve        func(*Server, http.ResponseWriter, *http.Request)
}

// routes is pvr-sdk's route table (upstream's paths).
var routes = []route{
	{"GET", "/cgi-bin/pvr/.pvrremote", (*Server).pvrRemote},
	{"GET", "/cgi-bin/pvr/state", (*Server).pvrState},
	{"POST", "/cgi-bin/pvr/objects/", (*Server).pvrObjectNew},
	{"POST", "/cgi-bin/pvr/objects", (*Server).pvrObjectNew},
	{"GET", "/cgi-bin/pvr/objects/{sha}", (*Server).pvrObjectInfo},
	{"GET", "/cgi-bin/pvr/objects/{sha}/blob", (*Server).pvrObjectGet},
	{"PUT", "/cgi-bin/pvr/objects/{sha}/blob", (*Server).pvrObjectPut},
	{"POST", "/cgi-bin/pvr/steps", (*Server).pvrPost},

	{"POST", "/cgi-bin/pvtx/begin", txOnly((*Server).txBegin)},
	{"PUT", "/cgi-bin/pvtx/add", txOnly((*Server).txAdd)},
	{"POST", "/cgi-bin/pvtx/add", txOnly((*Server).txAdd)},
	{"PUT", "/cgi-bin/pvtx/remove", txOnly((*Server).txRemove)},
	{"POST", "/cgi-bin/pvtx/remove", txOnly((*Server).txRemove)},
	{"POST", "/cgi-bin/pvtx/abort", txOnly((*Server).txAbort)},
	{"POST", "/cgi-bin/pvtx/commit", txOnly((*Server).txCommit)},
	{"GET", "/cgi-bin/pvtx/show", txOnly((*Server).txShow)},
	{"POST", "/cgi-bin/pvtx/run", (*Server).txRun},
	{"GET", "/cgi-bin/pvtx/status", (*Server).txStatus},
	{"GET", "/cgi-bin/pvtx/get-config", (*Server).txGetConfig},
	{"POST", "/cgi-bin/pvtx/usermeta/save", (*Server).userMetaSave},
	{"PUT", "/cgi-bin/pvtx/usermeta/save", (*Server).userMetaSave},
	{"PUT", "/cgi-bin/pvtx/usermeta/delete", (*Server).userMetaDelete},
	{"POST", "/cgi-bin/pvtx/usermeta/delete", (*Server).userMetaDelete},
	{"DELETE", "/cgi-bin/pvtx/usermeta/delete", (*Server).userMetaDelete},

	{"GET", "/cgi-bin/logs", (*Server).logs},
}

// New returns a Server.
func New(o Options) (*Server, error) {
	if o.Client == nil {
		return nil, errors.New("pvr-sdk: no pv-ctrl client")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxPackage <= 0 {
		o.MaxPackage = DefaultMaxPackage
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	tx, err := pvtx.Open(pvtx.Options{Dir: o.PvtxDir, Client: o.Client, Log: o.Log, Now: o.Now})
	if err != nil {
		return nil, fmt.Errorf("pvr-sdk: %w", err)
	}
	s := &Server{o: o, c: o.Client, tx: tx, mux: http.NewServeMux()}
	for _, r := range slices.Concat(routes, webRoutes) {
		serve := r.serve
		s.mux.HandleFunc(r.method+" "+r.path, func(w http.ResponseWriter, q *http.Request) { serve(s, w, q) })
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !sameOrigin(r) {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "cross-origin request refused"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// sameOrigin refuses a browser's cross-site writes: with the web UI the
// device is browsed, and any other page open in that browser could POST
// a simple request (no preflight) to begin, add and run a revision.
// Browsers name the page in Origin; pvr and curl send none.
func sameOrigin(r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host && (u.Scheme == "http" || u.Scheme == "https")
}

// txOnly runs h unless another pvtx request is running: pvtx keeps one
// transaction, and two clients editing it at once would lose changes.
func txOnly(h func(*Server, http.ResponseWriter, *http.Request)) func(*Server, http.ResponseWriter, *http.Request) {
	return func(s *Server, w http.ResponseWriter, r *http.Request) {
		if !s.txBusy.TryLock() {
			writeJSON(w, http.StatusConflict, map[string]any{"error": "Another pvtx request is in progress; try again when it ends."})
			return
		}
		defer s.txBusy.Unlock()
		h(s, w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		code, data = http.StatusInternalServerError, []byte(`{"error":"encode answer"}`)
	}
	writeRaw(w, code, data)
}

func writeRaw(w http.ResponseWriter, code int, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(data)
	w.Write([]byte("\n"))
}

// statusOf maps a pv-ctrl error to an HTTP status: pv-ctrl's own 4xx
// pass through, anything else is a bad gateway.
func statusOf(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		return ae.Status
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadGateway
}

// isNotFound reports a pv-ctrl 404.
func isNotFound(err error) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// ctrlJSON gets a pv-ctrl path and returns its raw JSON.
func (s *Server) ctrlJSON(ctx context.Context, path string) (json.RawMessage, error) {
	resp, err := s.c.Do(ctx, "GET", path, nil, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxState+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if len(data) > MaxState {
		return nil, fmt.Errorf("GET %s: answer larger than %d bytes", path, MaxState)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("GET %s: answer is not JSON", path)
	}
	return data, nil
}
