package pvrsdk

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/pvtx"
)

// The pvtx API, as the seeds document it: one transaction at a time,
// kept by runtime/pvtx in PvtxDir; objects of added packages stream to
// pv-ctrl as they are read.

// Upstream's messages (seeds, "Endpoints documentation").
const (
	msgNoTxShow = "No active transaction."
	msgNoTx     = "No active transaction. Start a transaction first."
	msgActive   = "A transaction is already active. Commit or abort it first."
)

// txError answers err of a transaction command in upstream's shapes.
func (s *Server) txError(w http.ResponseWriter, err error, noTx string) {
	switch {
	case errors.Is(err, pvtx.ErrNoTransaction):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": noTx, "transaction": nil})
	case errors.Is(err, pvtx.ErrActive):
		var cur json.RawMessage
		if data, serr := s.tx.Show(); serr == nil {
			cur = data
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": msgActive, "transaction": cur})
	default:
		code := http.StatusBadRequest
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			code = http.StatusRequestEntityTooLarge
		}
		writeJSON(w, code, map[string]any{"error": err.Error()})
	}
}

// show answers the transaction's state.
func (s *Server) show(w http.ResponseWriter, noTx string) {
	data, err := s.tx.Show()
	if err != nil {
		s.txError(w, err, noTx)
		return
	}
	writeRaw(w, http.StatusOK, data)
}

func (s *Server) txBegin(w http.ResponseWriter, r *http.Request) {
	base := "current"
	if r.URL.Query().Get("empty") == "true" {
		base = "empty"
	}
	if err := s.tx.Begin(r.Context(), base, ""); err != nil {
		s.txError(w, err, msgNoTx)
		return
	}
	s.show(w, msgNoTx)
}

func (s *Server) txAdd(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, s.o.MaxPackage)
	if err := s.tx.Add(r.Context(), body); err != nil {
		s.txError(w, err, msgNoTx)
		return
	}
	s.show(w, msgNoTx)
}

func (s *Server) txRemove(w http.ResponseWriter, r *http.Request) {
	if err := s.tx.Remove(r.URL.Query().Get("part")); err != nil {
		s.txError(w, err, msgNoTx)
		return
	}
	s.show(w, msgNoTx)
}

func (s *Server) txAbort(w http.ResponseWriter, r *http.Request) {
	if _, err := s.tx.Show(); err != nil {
		s.txError(w, err, msgNoTx)
		return
	}
	if err := s.tx.Abort(); err != nil {
		s.txError(w, err, msgNoTx)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (s *Server) txCommit(w http.ResponseWriter, r *http.Request) {
	rev, err := s.tx.Commit(r.Context(), "")
	if err != nil {
		s.txError(w, err, msgNoTx)
		return
	}
	// The committed transaction is done: the next begin starts afresh.
	if err := s.tx.Abort(); err != nil {
		s.o.Log.Warn("clear committed transaction", "err", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"revision": rev})
}

func (s *Server) txShow(w http.ResponseWriter, r *http.Request) { s.show(w, msgNoTxShow) }

// validRev checks a revision name from a query: pv-ctrl's names, no
// path tricks.
func validRev(rev string) bool {
	if rev == "" || len(rev) > 128 || strings.Contains(rev, "..") || strings.HasPrefix(rev, "/") {
		return false
	}
	for _, c := range rev {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/", c)) {
			return false
		}
	}
	n, local := strings.CutPrefix(rev, "locals/")
	return local || !strings.Contains(n, "/")
}

// progressPath is pv-ctrl's progress endpoint of rev.
func progressPath(rev string) string {
	if n, ok := strings.CutPrefix(rev, "locals/"); ok {
		return "/steps/locals/" + url.PathEscape(n) + "/progress"
	}
	return "/steps/" + url.PathEscape(rev) + "/progress"
}

func (s *Server) txRun(w http.ResponseWriter, r *http.Request) {
	rev := r.URL.Query().Get("rev")
	if !validRev(rev) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "rev: want a revision name (run?rev=locals/…)"})
		return
	}
	cmd := map[string]string{"op": "LOCAL_RUN", "payload": rev}
	if err := s.c.JSON(r.Context(), "POST", "/commands", cmd, nil); err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	data, err := s.ctrlJSON(r.Context(), progressPath(rev))
	if err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	writeRaw(w, http.StatusOK, data)
}

func (s *Server) txStatus(w http.ResponseWriter, r *http.Request) {
	rev := r.URL.Query().Get("rev")
	if rev == "" {
		rev = s.currentRev(r)
	}
	if !validRev(rev) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "rev: not a revision name"})
		return
	}
	data, err := s.ctrlJSON(r.Context(), progressPath(rev))
	if err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rev": rev, "progress": json.RawMessage(data)})
}

// currentRev is the running revision's name from the device metadata
// (pantavisor.revision), or "current" when pv-ctrl does not say.
func (s *Server) currentRev(r *http.Request) string {
	var meta map[string]any
	if err := s.c.JSON(r.Context(), "GET", "/device-meta", nil, &meta); err == nil {
		if rev, ok := meta["pantavisor.revision"].(string); ok && validRev(rev) {
			return rev
		}
	}
	return "current"
}

func (s *Server) txGetConfig(w http.ResponseWriter, r *http.Request) {
	dev, err := s.ctrlJSON(r.Context(), "/device-meta")
	if err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	user, err := s.ctrlJSON(r.Context(), "/user-meta")
	if err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"device": dev, "user": user})
}

// metaKey checks a user metadata key from the query.
func metaKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	k := r.URL.Query().Get("key")
	if k == "" || len(k) > 255 || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "key: want a user metadata key (no '/')"})
		return "", false
	}
	return k, true
}

func (s *Server) userMetaSave(w http.ResponseWriter, r *http.Request) {
	k, ok := metaKey(w, r)
	if !ok {
		return
	}
	val, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSmall))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": err.Error()})
		return
	}
	resp, err := s.c.Do(r.Context(), "PUT", "/user-meta/"+url.PathEscape(k), strings.NewReader(string(val)), int64(len(val)))
	if err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	resp.Body.Close()
	s.userMetaList(w, r)
}

func (s *Server) userMetaDelete(w http.ResponseWriter, r *http.Request) {
	k, ok := metaKey(w, r)
	if !ok {
		return
	}
	resp, err := s.c.Do(r.Context(), "DELETE", "/user-meta/"+url.PathEscape(k), nil, 0)
	if err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	resp.Body.Close()
	s.userMetaList(w, r)
}

func (s *Server) userMetaList(w http.ResponseWriter, r *http.Request) {
	data, err := s.ctrlJSON(r.Context(), "/user-meta")
	if err != nil {
		writeJSON(w, statusOf(err), map[string]any{"error": err.Error()})
		return
	}
	writeRaw(w, http.StatusOK, data)
}
