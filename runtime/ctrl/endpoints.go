package ctrl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

func (h *Handler) buildinfo(q *Request) {
	writeRaw(q.w, "text/plain", []byte(h.opt.BuildInfo))
}

func (h *Handler) config(q *Request) {
	if h.opt.Config == nil {
		notImplemented(q.w)
		return
	}
	writeJSON(q.w, h.opt.Config.Legacy())
}

func (h *Handler) config2(q *Request) {
	if h.opt.Config == nil {
		notImplemented(q.w)
		return
	}
	writeJSON(q.w, h.opt.Config.Entries())
}

// --- metadata ---

func (h *Handler) metaList(q *Request, m Meta) {
	if m == nil {
		notImplemented(q.w)
		return
	}
	b, err := m.MarshalJSON()
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeRaw(q.w, "application/json", b)
}

func (h *Handler) metaPut(q *Request, m Meta) {
	if m == nil {
		notImplemented(q.w)
		return
	}
	key := q.args[0]
	if err := command.ValidMetaKey(key); err != nil {
		writeError(q.w, http.StatusBadRequest, "Bad metadata "+err.Error())
		return
	}
	value, err := io.ReadAll(q.r.Body)
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	if len(value) == 0 {
		writeError(q.w, http.StatusBadRequest, "Metadata value is empty")
		return
	}
	if err := m.Set(key, value); err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeOK(q.w)
}

func (h *Handler) metaDelete(q *Request, m Meta, notFound string) {
	if m == nil {
		notImplemented(q.w)
		return
	}
	key := q.args[0]
	if err := command.ValidMetaKey(key); err != nil {
		writeError(q.w, http.StatusBadRequest, "Bad metadata "+err.Error())
		return
	}
	if err := m.Delete(key); err != nil {
		h.fail(q.w, err, notFound)
		return
	}
	writeOK(q.w)
}

func (h *Handler) userMetaList(q *Request)   { h.metaList(q, h.opt.UserMeta) }
func (h *Handler) userMetaPut(q *Request)    { h.metaPut(q, h.opt.UserMeta) }
func (h *Handler) deviceMetaList(q *Request) { h.metaList(q, h.opt.DeviceMeta) }
func (h *Handler) deviceMetaPut(q *Request)  { h.metaPut(q, h.opt.DeviceMeta) }
func (h *Handler) userMetaDelete(q *Request) {
	h.metaDelete(q, h.opt.UserMeta, "User meta does not exist")
}
func (h *Handler) deviceMetaDelete(q *Request) {
	h.metaDelete(q, h.opt.DeviceMeta, "Device meta does not exist")
}

// --- objects ---

// IsSha reports whether s is exactly 64 lowercase hex characters.
func IsSha(s string) bool { return storage.ValidSha(s) }

func (h *Handler) objectsList(q *Request) {
	if h.opt.Objects == nil {
		notImplemented(q.w)
		return
	}
	objs, err := h.opt.Objects.List()
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	out := make([]objectEntry, 0, len(objs))
	for _, o := range objs {
		out = append(out, objectEntry{o.Sha, strconv.FormatInt(o.Size, 10)})
	}
	writeJSON(q.w, out)
}

func (h *Handler) objectGet(q *Request) {
	if h.opt.Objects == nil {
		notImplemented(q.w)
		return
	}
	sha := q.args[0]
	if !IsSha(sha) {
		writeError(q.w, http.StatusBadRequest, "Request has bad object name")
		return
	}
	rc, err := h.opt.Objects.Open(sha)
	if errors.Is(err, ErrNotFound) {
		writeError(q.w, http.StatusBadRequest, "Request has bad object name")
		return
	}
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	defer rc.Close()
	q.w.Header().Set("Content-Type", "application/octet-stream")
	q.w.WriteHeader(http.StatusOK)
	buf := make([]byte, 4096)
	io.CopyBuffer(q.w, rc, buf)
}

func (h *Handler) objectPut(q *Request) {
	if h.opt.Objects == nil {
		notImplemented(q.w)
		return
	}
	sha := q.args[0]
	if !IsSha(sha) {
		writeError(q.w, http.StatusBadRequest, "Request has bad object name")
		return
	}
	if err := h.opt.Objects.Put(sha, q.r.ContentLength, q.r.Body); err != nil {
		if errors.Is(err, ErrBadState) {
			writeError(q.w, http.StatusUnprocessableEntity, "Object has bad checksum")
			return
		}
		h.fail(q.w, err, "")
		return
	}
	writeOK(q.w)
}

func (h *Handler) storageGC(q *Request) {
	if h.opt.Objects == nil {
		notImplemented(q.w)
		return
	}
	n, err := h.opt.Objects.GC()
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeJSON(q.w, gcResult{Reclaimed: n})
}

// --- steps ---

func (h *Handler) stepsList(q *Request) {
	if h.opt.Steps == nil {
		notImplemented(q.w)
		return
	}
	steps, err := h.opt.Steps.List()
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	out := make([]stepEntry, 0, len(steps))
	for _, s := range steps {
		p := s.Progress
		if len(p) == 0 || !json.Valid(p) {
			p = json.RawMessage("{}")
		}
		out = append(out, stepEntry{s.Name, s.Date.Local().Format("2006-01-02T15:04:05Z"), s.CommitMsg, p})
	}
	writeJSON(q.w, out)
}

// stepRev validates a revision from the path; "current" is allowed for reads.
func stepRev(q *Request, local, read bool) (string, bool) {
	rev := q.args[0]
	if local {
		rev = "locals/" + rev
	}
	if read && rev == "current" {
		return rev, true
	}
	if err := ValidRevision(rev); err != nil {
		writeError(q.w, http.StatusBadRequest, "Request has bad step name: "+err.Error())
		return "", false
	}
	return rev, true
}

func (h *Handler) stepGet(q *Request)      { h.stepGetRev(q, false) }
func (h *Handler) stepGetLocal(q *Request) { h.stepGetRev(q, true) }

func (h *Handler) stepGetRev(q *Request, local bool) {
	if h.opt.Steps == nil {
		notImplemented(q.w)
		return
	}
	rev, ok := stepRev(q, local, true)
	if !ok {
		return
	}
	b, err := h.opt.Steps.State(rev)
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeRaw(q.w, "application/json", b)
}

func (h *Handler) stepPut(q *Request) {
	if h.opt.Steps == nil {
		notImplemented(q.w)
		return
	}
	rev, ok := stepRev(q, true, false)
	if !ok {
		return
	}
	if err := h.opt.Steps.Put(rev, q.r.ContentLength, q.r.Body); err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeOK(q.w)
}

func (h *Handler) stepProgress(q *Request)      { h.stepProgressRev(q, false) }
func (h *Handler) stepProgressLocal(q *Request) { h.stepProgressRev(q, true) }

func (h *Handler) stepProgressRev(q *Request, local bool) {
	if h.opt.Steps == nil {
		notImplemented(q.w)
		return
	}
	rev, ok := stepRev(q, local, true)
	if !ok {
		return
	}
	b, err := h.opt.Steps.Progress(rev)
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeRaw(q.w, "application/json", b)
}

func (h *Handler) stepCommitMsg(q *Request)      { h.stepCommitMsgRev(q, false) }
func (h *Handler) stepCommitMsgLocal(q *Request) { h.stepCommitMsgRev(q, true) }

func (h *Handler) stepCommitMsgRev(q *Request, local bool) {
	if h.opt.Steps == nil {
		notImplemented(q.w)
		return
	}
	rev, ok := stepRev(q, local, true)
	if !ok {
		return
	}
	msg, err := io.ReadAll(q.r.Body)
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	if err := h.opt.Steps.SetCommitMsg(rev, msg); err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeOK(q.w)
}

// --- daemons ---

func (h *Handler) daemonsList(q *Request) {
	if h.opt.Daemons == nil {
		writeJSON(q.w, []Daemon{})
		return
	}
	ds := h.opt.Daemons.List()
	if ds == nil {
		ds = []Daemon{}
	}
	writeJSON(q.w, ds)
}

// actionBody decodes {"action": "..."}.
func actionBody(q *Request) (string, bool) {
	var body struct {
		Action *string `json:"action"`
	}
	if err := json.NewDecoder(q.r.Body).Decode(&body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(q.w, http.StatusRequestEntityTooLarge, "Request body too large")
			return "", false
		}
		writeError(q.w, http.StatusBadRequest, "Invalid JSON")
		return "", false
	}
	if body.Action == nil {
		writeError(q.w, http.StatusBadRequest, "Missing 'action' field")
		return "", false
	}
	return *body.Action, true
}

func (h *Handler) daemonAction(q *Request) {
	if h.opt.Daemons == nil {
		writeError(q.w, http.StatusNotFound, "Daemon not found")
		return
	}
	action, ok := actionBody(q)
	if !ok {
		return
	}
	if action != "start" && action != "stop" {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid action %q: want start or stop", action))
		return
	}
	if err := h.opt.Daemons.Action(q.args[0], action); err != nil {
		h.fail(q.w, err, "Daemon not found")
		return
	}
	writeOK(q.w)
}

// --- commands ---

func (h *Handler) commands(q *Request) {
	if h.opt.Commands == nil {
		notImplemented(q.w)
		return
	}
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	c, err := command.Parse(body)
	if err != nil {
		writeError(q.w, http.StatusBadRequest, "Command has bad format: "+err.Error())
		return
	}
	status, msg, retry := c.Reject(h.opt.Commands.CommandState())
	switch {
	case status == http.StatusNoContent:
		q.w.WriteHeader(status)
		return
	case status != 0:
		if retry > 0 {
			q.w.Header().Set("Retry-After", strconv.Itoa(retry))
		}
		writeError(q.w, status, msg)
		return
	}
	if err := h.opt.Commands.Queue(c); err != nil {
		if errors.Is(err, ErrBusy) {
			q.w.Header().Set("Retry-After", "120")
			writeError(q.w, http.StatusServiceUnavailable, "A command is already queued, try again later")
			return
		}
		h.fail(q.w, err, "")
		return
	}
	h.log.Info("ctrl: command queued", "op", c.Op, "payload", c.Payload, "caller", q.caller.Name)
	writeOK(q.w)
}

// --- later backends (containers, drivers, extras) ---

func (h *Handler) containersList(q *Request) {
	v, err := h.opt.Containers.Containers()
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeJSON(q.w, list(v))
}

func (h *Handler) containerAction(q *Request) {
	action, ok := actionBody(q)
	if !ok {
		return
	}
	if err := h.opt.Containers.ContainerAction(q.args[0], action); err != nil {
		h.fail(q.w, err, "Container not found")
		return
	}
	writeOK(q.w)
}

func (h *Handler) groupsList(q *Request) {
	v, err := h.opt.Containers.Groups()
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeJSON(q.w, list(v))
}

func (h *Handler) signal(q *Request) {
	var s struct {
		Type    *string `json:"type"`
		Payload *string `json:"payload"`
	}
	if err := json.NewDecoder(q.r.Body).Decode(&s); err != nil || s.Type == nil {
		writeError(q.w, http.StatusBadRequest, "Signal has bad format")
		return
	}
	payload := ""
	if s.Payload != nil {
		payload = *s.Payload
	}
	if err := h.opt.Containers.Signal(q.caller.Name, *s.Type, payload); err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeOK(q.w)
}

func (h *Handler) driversList(q *Request) {
	v, err := h.opt.Drivers.Drivers(q.caller.Name)
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	if len(v) == 0 {
		// Upstream answers an empty object, not an array (spec §5 ⚠).
		writeRaw(q.w, "application/json", []byte("{}"))
		return
	}
	writeJSON(q.w, v)
}

func (h *Handler) driversLoad(q *Request, name string, load bool) {
	if err := h.opt.Drivers.Load(q.caller.Name, name, load); err != nil {
		h.fail(q.w, err, "Driver not found")
		return
	}
	writeOK(q.w)
}

func (h *Handler) driversLoadAll(q *Request)   { h.driversLoad(q, "", true) }
func (h *Handler) driversUnloadAll(q *Request) { h.driversLoad(q, "", false) }
func (h *Handler) driverLoad(q *Request)       { h.driversLoad(q, q.args[0], true) }
func (h *Handler) driverUnload(q *Request)     { h.driversLoad(q, q.args[0], false) }

func (h *Handler) xconnectGraph(q *Request) {
	v, err := h.opt.Extras.XConnectGraph()
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeJSON(q.w, list(v))
}

func (h *Handler) wakelocks(q *Request) {
	v, err := h.opt.Extras.Wakelocks()
	if err != nil {
		h.fail(q.w, err, "")
		return
	}
	writeJSON(q.w, v)
}

// list renders a nil slice as [], never null.
func list[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
