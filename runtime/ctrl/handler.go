package ctrl

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options configures a Handler. Nil backends answer 501.
type Options struct {
	Log        *slog.Logger
	UserMeta   Meta
	DeviceMeta Meta
	Steps      Steps
	Objects    Objects
	Config     Config
	Commands   Commands
	Daemons    Daemons
	Platforms  Platforms
	Containers Containers
	Drivers    Drivers
	Extras     Extras
	// BuildInfo is the text of GET /buildinfo.
	BuildInfo string
	// AppEngine lets a cgroup "<platform>-<digits>" that is no platform
	// itself name <platform> (upstream's App Engine instances).
	AppEngine bool
	// ProcRoot is where /proc lives (tests); default "/proc".
	ProcRoot string

	// Routes is the route table (default DefaultRoutes(): pv-ctrl's).
	Routes []Route
	// Identify tells who connected; it runs once per connection, at
	// accept, and the answer holds for every request on it. Default:
	// PeerCaller (peer credentials, pidfd and cgroup).
	Identify func(net.Conn) (Caller, error)
	// MaxConns bounds the open connections (default DefaultMaxConns);
	// MaxCallerConns those of each caller without the mgmt role (default
	// DefaultMaxCallerConns); ReservedConns of MaxConns are kept for the
	// host and mgmt callers (default DefaultReservedConns, at most a
	// quarter of MaxConns), HostReservedConns of those for the host alone
	// (default DefaultHostReservedConns, at most half the reserve);
	// MaxMgmtConns bounds each mgmt platform (default
	// DefaultMaxMgmtConns). A connection over a limit is closed at accept.
	MaxConns, MaxCallerConns, ReservedConns int
	MaxMgmtConns, HostReservedConns         int
	// ReadHeaderTimeout bounds the wait for a request's headers (default
	// 10 s); IdleTimeout closes a connection idle between requests
	// (default 2 min).
	ReadHeaderTimeout, IdleTimeout time.Duration
}

// Handler is the pv-ctrl http.Handler.
type Handler struct {
	opt      Options
	log      *slog.Logger
	procRoot string
	identify func(net.Conn) (Caller, error)
	routes   []Route
	conns    *conns
	// accepted, when set, sees every identification (tests).
	accepted func(Caller, error)
}

// New returns a Handler over the given backends.
func New(o Options) *Handler {
	h := &Handler{opt: o, log: o.Log, procRoot: o.ProcRoot, identify: o.Identify}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.procRoot == "" {
		h.procRoot = "/proc"
	}
	if h.identify == nil {
		h.identify = h.PeerCaller
	}
	if o.Routes == nil {
		o.Routes = pvctrl
	}
	h.routes = compile(o.Routes)
	h.conns = newConns(o, h.log)
	return h
}

// NewServer returns an http.Server for h. Each connection's caller is
// identified at accept (Options.Identify) and bound to it, and the
// connection limits are applied there: serve h with this server only.
func NewServer(h *Handler) *http.Server {
	hdr, idle := h.opt.ReadHeaderTimeout, h.opt.IdleTimeout
	if hdr <= 0 {
		hdr = 10 * time.Second
	}
	if idle <= 0 {
		// Containers keep connections open; idle ones are dropped.
		idle = 2 * time.Minute
	}
	return &http.Server{
		// net/http's own complaints (bad requests, TLS probes) go to our log.
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
		Handler:           h,
		ConnContext:       h.connContext,
		ConnState:         h.connState,
		ReadHeaderTimeout: hdr,
		IdleTimeout:       idle,
		MaxHeaderBytes:    16 << 10,
	}
}

// Request is what a route's Serve gets.
type Request struct {
	w      http.ResponseWriter
	r      *http.Request
	args   []string // values of the {} segments, unescaped
	caller Caller
	h      *Handler
}

// HTTP returns the HTTP request (its body is bounded by the route's Limit).
func (q *Request) HTTP() *http.Request { return q.r }

// ResponseWriter returns the response of a route that writes its own.
func (q *Request) ResponseWriter() http.ResponseWriter { return q.w }

// Args returns the values of the pattern's {} segments, unescaped.
func (q *Request) Args() []string { return q.args }

// Caller returns who sent the request (identified at accept).
func (q *Request) Caller() Caller { return q.caller }

// JSON answers 200 with v as JSON.
func (q *Request) JSON(v any) { writeJSON(q.w, v) }

// OK answers 200 with an empty JSON body.
func (q *Request) OK() { writeOK(q.w) }

// Error answers code with {"Error": msg}.
func (q *Request) Error(code int, msg string) { writeError(q.w, code, msg) }

// Fail answers err with the status of the sentinel it wraps (ErrNotFound
// → 404, …; anything else 500).
func (q *Request) Fail(err error) { q.h.fail(q.w, err, "") }

// ServeHTTP checks the host, resolves the route and the caller, enforces
// the route's method, access and body limit, then runs the endpoint.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !hostAllowed(r.Host) {
		h.log.Warn("ctrl: rejected host", "host", r.Host)
		closeConn(w)
		return
	}
	segs, err := splitPath(r.URL)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Request has bad path: "+err.Error())
		return
	}
	rt, args, allowed := match(h.routes, segs, r.Method)
	if rt == nil {
		if len(allowed) > 0 {
			writeError(w, http.StatusBadRequest, "Method not supported for this endpoint")
			return
		}
		writeError(w, http.StatusBadRequest, "unknown endpoint: "+r.URL.RequestURI())
		return
	}
	c, err := h.caller(r.Context())
	if err != nil {
		h.log.Warn("ctrl: caller", "err", err)
		writeError(w, http.StatusInternalServerError, "Internal error, unknown caller")
		return
	}
	if rt.Access == Mgmt && !c.Mgmt {
		writeError(w, http.StatusForbidden, "Request not sent from a mgmt platform")
		return
	}
	// Bodies sent to body-less routes are ignored, never read.
	if rt.Limit > 0 && r.ContentLength > rt.Limit {
		writeError(w, http.StatusRequestEntityTooLarge, "Request body too large (max "+strconv.FormatInt(rt.Limit, 10)+" bytes)")
		return
	}
	if rt.Limit >= 0 {
		r.Body = http.MaxBytesReader(w, r.Body, max(rt.Limit, 0))
	}
	if rt.Write {
		// Routes any container may call are logged at debug level: a
		// nobody container must not be able to fill the log.
		lvl := slog.LevelInfo
		if rt.Access != Mgmt {
			lvl = slog.LevelDebug
		}
		h.log.Log(r.Context(), lvl, "ctrl: request", "method", r.Method, "path", r.URL.Path, "caller", c.Name)
	}
	if !h.opt.has(rt.backend) {
		notImplemented(w)
		return
	}
	rt.Serve(h, &Request{w: w, r: r, args: args, caller: c, h: h})
}

func hostAllowed(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return host == "localhost"
}

// closeConn drops the connection without an answer (upstream behaviour for
// a foreign Host header).
func closeConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, http.StatusBadRequest, "Bad Host header")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	conn.Close()
}

// splitPath splits the escaped path into unescaped segments. One trailing
// slash is ignored.
func splitPath(u *url.URL) ([]string, error) {
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		return nil, errors.New("not absolute")
	}
	p = strings.TrimPrefix(p, "/")
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	if p == "" {
		return []string{}, nil
	}
	raw := strings.Split(p, "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		v, err := url.PathUnescape(s)
		if err != nil {
			return nil, err
		}
		segs[i] = v
	}
	return segs, nil
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Internal error: "+err.Error())
		return
	}
	writeRaw(w, "application/json", b)
}

func writeRaw(w http.ResponseWriter, ctype string, b []byte) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// writeOK answers 200 with an empty JSON body.
func writeOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// writeError answers {"Error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"Error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

// fail maps a backend error to its status code.
func (h *Handler) fail(w http.ResponseWriter, err error, notFound string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "Request body too large")
	case errors.Is(err, ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, ErrNotFound):
		if notFound == "" {
			notFound = "Resource does not exist"
		}
		writeError(w, http.StatusNotFound, notFound)
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrBadState):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, ErrNoSpace):
		writeError(w, http.StatusInsufficientStorage, err.Error())
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrBusy):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrNotImplemented):
		writeError(w, http.StatusNotImplemented, err.Error())
	case errors.Is(err, ErrForbidden):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, ErrInternal):
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		h.log.Error("ctrl: request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "Internal error: "+err.Error())
	}
}

func notImplemented(w http.ResponseWriter) {
	writeError(w, http.StatusNotImplemented, "not implemented")
}
