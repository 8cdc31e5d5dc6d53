package pvrsdk

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The device web UI: static files embedded in the program (no build
// step, nothing fetched at run time) under /app/, and the few JSON
// answers the page needs that the pvtx and logs APIs do not give, under
// /app/api/. Everything else the page does goes through the pvtx and
// logs APIs, so the UI can do nothing a curl user cannot.

//go:embed web
var webFiles embed.FS

// webRoutes serve the UI; New adds them to the route table.
var webRoutes = []route{
	{"GET", "/{$}", (*Server).webRedirect},
	{"GET", "/app", (*Server).webRedirect},
	{"GET", "/app/", (*Server).webStatic},
	{"GET", "/app/api/status", (*Server).webStatus},
	{"GET", "/app/api/step", (*Server).webStep},
	{"GET", "/app/api/log-sources", (*Server).webLogSources},
}

func (s *Server) webRedirect(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/app/", http.StatusFound)
}

// webStatic serves the embedded files; anything not among them is a 404
// (no directory listings).
func (s *Server) webStatic(w http.ResponseWriter, r *http.Request) {
	sub, _ := fs.Sub(webFiles, "web")
	// The page and its scripts change with the program: always revalidate.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	http.StripPrefix("/app", http.FileServerFS(sub)).ServeHTTP(w, r)
}

// WebStatus is the answer of GET /app/api/status: the running revision,
// its progress (pv-ctrl's object, as is) and the containers (pv-ctrl's
// GET /containers, as is).
type WebStatus struct {
	Revision   string          `json:"revision"`
	Progress   json.RawMessage `json:"progress"`
	Containers json.RawMessage `json:"containers"`
}

func (s *Server) webStatus(w http.ResponseWriter, r *http.Request) {
	rev := s.currentRev(r)
	st := WebStatus{Revision: rev}
	var err error
	if st.Progress, err = s.ctrlJSON(r.Context(), progressPath(rev)); err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	if st.Containers, err = s.ctrlJSON(r.Context(), "/containers"); err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// stepPath is pv-ctrl's step endpoint of rev.
func stepPath(rev string) string {
	if n, ok := strings.CutPrefix(rev, "locals/"); ok {
		return "/steps/locals/" + url.PathEscape(n)
	}
	return "/steps/" + url.PathEscape(rev)
}

// webStep answers the state JSON of ?rev= (default: the running one).
func (s *Server) webStep(w http.ResponseWriter, r *http.Request) {
	rev := r.URL.Query().Get("rev")
	if rev == "" {
		rev = s.currentRev(r)
	}
	if !validRev(rev) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "rev: not a revision name"})
		return
	}
	data, err := s.ctrlJSON(r.Context(), stepPath(rev))
	if err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	writeRaw(w, http.StatusOK, data)
}

// webLogSources lists the log sources of ?rev= (default "current"): the
// directories of the revision's log tree, sorted; [] when it has none.
func (s *Server) webLogSources(w http.ResponseWriter, r *http.Request) {
	rev := r.URL.Query().Get("rev")
	if rev == "" {
		rev = "current"
	}
	if !validRev(rev) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "rev: not a revision name"})
		return
	}
	sources := []string{}
	ents, err := os.ReadDir(filepath.Join(s.o.LogDir, filepath.FromSlash(rev)))
	if err != nil && !os.IsNotExist(err) {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
		return
	}
	for _, e := range ents {
		if e.IsDir() && validElem(e.Name()) {
			sources = append(sources, e.Name())
		}
	}
	slices.Sort(sources)
	writeJSON(w, http.StatusOK, map[string]any{"rev": rev, "sources": sources})
}
