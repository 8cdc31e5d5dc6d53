package pvrsdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
	"github.com/pantavisor/pantavisor-go/runtime/pvtx"
)

// The pvr remote protocol (spec pvr-hub §1.7–1.8): pvr reads .pvrremote,
// gets the state, asks the objects endpoint about each object and PUTs
// those it is told to, then posts the new state. Objects go straight to
// pv-ctrl (PUT /objects/<sha>); the post becomes a local revision
// (PUT /steps/locals/<name>) that is run (LOCAL_RUN).

// remoteBase is the pvr remote URL as the client reached it.
func remoteBase(r *http.Request) string {
	return "http://" + r.Host + "/cgi-bin/pvr"
}

// pvrError answers in the hub's error shape, which pvr prints.
func pvrError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]any{"Error": fmt.Sprintf(format, args...), "Code": code})
}

func (s *Server) pvrRemote(w http.ResponseWriter, r *http.Request) {
	base := remoteBase(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"pvr-spec":         "pvr-pantahub-1",
		"json-get-url":     base + "/state",
		"json-key":         "state",
		"objects-endpoint": base + "/objects",
		"post-url":         base + "/steps",
		"post-fields":      []string{"commit-msg"},
		"post-fields-opt":  []string{"rev"},
	})
}

func (s *Server) pvrState(w http.ResponseWriter, r *http.Request) {
	data, err := s.ctrlJSON(r.Context(), "/steps/current")
	if err != nil {
		pvrError(w, statusOf(err), "get the running state: %v", err)
		return
	}
	writeRaw(w, http.StatusOK, data)
}

// isSha reports a lowercase sha256 hex string.
func isSha(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// objectSize asks pv-ctrl for an object: its size, or ok false when the
// device does not have it. pv-ctrl answers a missing object, like a bad
// name, with 400 "Request has bad object name" (upstream's shape); sha
// is checked first, so here that means missing. pv-ctrl streams objects
// without a Content-Length: the size then comes from GET /objects.
func (s *Server) objectSize(ctx context.Context, sha string) (size int64, ok bool, err error) {
	resp, err := s.c.Do(ctx, "GET", "/objects/"+sha, nil, 0)
	var ae *client.APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusBadRequest) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	resp.Body.Close()
	if resp.ContentLength >= 0 {
		return resp.ContentLength, true, nil
	}
	var list []struct {
		Sha  string `json:"sha256"`
		Size string `json:"size"`
	}
	if err := s.c.JSON(ctx, "GET", "/objects", nil, &list); err != nil {
		return -1, true, nil // it exists; the size is only informative
	}
	for _, o := range list {
		if o.Sha == sha {
			if n, err := strconv.ParseInt(o.Size, 10, 64); err == nil {
				return n, true, nil
			}
		}
	}
	return -1, true, nil
}

// objectRecord is the hub's object answer, as much as pvr reads.
type objectRecord struct {
	ObjectName string `json:"objectname,omitempty"`
	Sha        string `json:"sha256sum"`
	Size       string `json:"size"`
	SizeInt    int64  `json:"sizeint"`
	MimeType   string `json:"mime-type,omitempty"`
	PutURL     string `json:"signed-puturl,omitempty"`
	GetURL     string `json:"signed-geturl,omitempty"`
}

// ParseObjectRequest reads the body of POST objects/: the object's name,
// sha256 and decimal size (a string, as pvr sends it, or a number).
func ParseObjectRequest(data []byte) (name, sha string, size int64, err error) {
	var b struct {
		Name string          `json:"objectname"`
		Sha  string          `json:"sha256sum"`
		Size json.RawMessage `json:"size"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return "", "", 0, fmt.Errorf("object request: %w", err)
	}
	if !isSha(b.Sha) {
		return "", "", 0, fmt.Errorf("object request: sha256sum %q is not a lowercase sha256", b.Sha)
	}
	var str string
	if json.Unmarshal(b.Size, &str) != nil {
		str = string(b.Size)
	}
	size, err = strconv.ParseInt(strings.TrimSpace(str), 10, 64)
	if err != nil || size < 0 {
		return "", "", 0, fmt.Errorf("object request: size %s is not a decimal size", b.Size)
	}
	return b.Name, b.Sha, size, nil
}

func (s *Server) pvrObjectNew(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSmall))
	if err != nil {
		pvrError(w, http.StatusRequestEntityTooLarge, "object request: %v", err)
		return
	}
	name, sha, size, err := ParseObjectRequest(data)
	if err != nil {
		pvrError(w, http.StatusBadRequest, "%v", err)
		return
	}
	base := remoteBase(r)
	rec := objectRecord{ObjectName: name, Sha: sha, Size: strconv.FormatInt(size, 10), SizeInt: size,
		MimeType: "application/octet-stream", GetURL: base + "/objects/" + sha + "/blob"}
	have, ok, err := s.objectSize(r.Context(), sha)
	if err != nil {
		pvrError(w, statusOf(err), "object %s: %v", sha, err)
		return
	}
	if ok {
		// pvr skips an object answered 409.
		if have >= 0 {
			rec.Size, rec.SizeInt = strconv.FormatInt(have, 10), have
		}
		w.Header().Set("Pantahub-Object-Type", "object")
		writeJSON(w, http.StatusConflict, rec)
		return
	}
	rec.PutURL = base + "/objects/" + sha + "/blob"
	writeJSON(w, http.StatusOK, rec)
}

func (s *Server) pvrObjectInfo(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	if !isSha(sha) {
		pvrError(w, http.StatusBadRequest, "object %q: not a sha256", sha)
		return
	}
	size, ok, err := s.objectSize(r.Context(), sha)
	switch {
	case err != nil:
		pvrError(w, statusOf(err), "object %s: %v", sha, err)
	case !ok:
		pvrError(w, http.StatusNotFound, "object %s: not on the device", sha)
	default:
		writeJSON(w, http.StatusOK, objectRecord{Sha: sha, Size: strconv.FormatInt(size, 10), SizeInt: size,
			MimeType: "application/octet-stream", GetURL: remoteBase(r) + "/objects/" + sha + "/blob"})
	}
}

func (s *Server) pvrObjectGet(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	if !isSha(sha) {
		pvrError(w, http.StatusBadRequest, "object %q: not a sha256", sha)
		return
	}
	resp, err := s.c.Do(r.Context(), "GET", "/objects/"+sha, nil, 0)
	if err != nil {
		pvrError(w, statusOf(err), "object %s: %v", sha, err)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if resp.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	io.Copy(w, resp.Body)
}

// pvrObjectPut streams an upload to pv-ctrl, which checks the sha256 and
// keeps nothing of a short or wrong body.
func (s *Server) pvrObjectPut(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	if !isSha(sha) {
		pvrError(w, http.StatusBadRequest, "object %q: not a sha256", sha)
		return
	}
	if r.ContentLength < 0 {
		pvrError(w, http.StatusLengthRequired, "object %s: Content-Length required", sha)
		return
	}
	resp, err := s.c.Do(r.Context(), "PUT", "/objects/"+sha, r.Body, r.ContentLength)
	if err != nil {
		pvrError(w, statusOf(err), "object %s: %v", sha, err)
		return
	}
	resp.Body.Close()
	writeJSON(w, http.StatusOK, map[string]string{"sha256sum": sha})
}

// Post is the body of POST steps.
type Post struct {
	CommitMsg string
	// Rev is the revision number pvr sent (-1 when none).
	Rev   int64
	State *pvtx.Doc
}

// ParsePost reads a pvr post body: {"commit-msg","rev","state"}.
func ParsePost(data []byte) (Post, error) {
	var b struct {
		CommitMsg string          `json:"commit-msg"`
		Rev       json.RawMessage `json:"rev"`
		State     json.RawMessage `json:"state"`
	}
	p := Post{Rev: -1}
	if err := json.Unmarshal(data, &b); err != nil {
		return p, fmt.Errorf("post: %w", err)
	}
	if len(b.State) == 0 || string(b.State) == "null" {
		return p, errors.New("post: no state")
	}
	if len(b.Rev) > 0 && string(b.Rev) != "null" {
		n, err := strconv.ParseInt(string(b.Rev), 10, 64)
		if err != nil {
			return p, fmt.Errorf("post: rev %s is not an integer", b.Rev)
		}
		p.Rev = n
	}
	d, err := pvtx.ParseDoc(b.State)
	if err != nil {
		return p, fmt.Errorf("post: state: %w", err)
	}
	p.CommitMsg, p.State = b.CommitMsg, d
	return p, nil
}

// maxCommitMsg is pv-ctrl's limit for a commit message.
const maxCommitMsg = 256

func (s *Server) pvrPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxState))
	if err != nil {
		pvrError(w, http.StatusRequestEntityTooLarge, "post: %v", err)
		return
	}
	p, err := ParsePost(data)
	if err != nil {
		pvrError(w, http.StatusBadRequest, "%v", err)
		return
	}
	// Every object must be on the device before anything is written.
	var missing []string
	for _, k := range p.State.Keys() {
		sha, ok := p.State.Object(k)
		if !ok {
			continue
		}
		_, have, err := s.objectSize(ctx, sha)
		if err != nil {
			pvrError(w, statusOf(err), "post: object %s: %v", sha, err)
			return
		}
		if !have {
			missing = append(missing, k+" ("+sha+")")
		}
	}
	if len(missing) > 0 {
		pvrError(w, http.StatusBadRequest, "post: objects missing on the device: %s", strings.Join(missing, ", "))
		return
	}
	state := p.State.Bytes()
	sum := sha256.Sum256(state)
	name, err := s.postName(ctx, p.Rev, hex.EncodeToString(sum[:4]))
	if err != nil {
		pvrError(w, statusOf(err), "post: %v", err)
		return
	}
	// pv-ctrl parses the state and checks its signatures; a refused
	// state leaves nothing behind.
	resp, err := s.c.Do(ctx, "PUT", "/steps/locals/"+url.PathEscape(name), bytes.NewReader(state), int64(len(state)))
	if err != nil {
		pvrError(w, statusOf(err), "post: revision locals/%s refused: %v", name, err)
		return
	}
	resp.Body.Close()
	if msg := p.CommitMsg; msg != "" {
		if len(msg) > maxCommitMsg {
			msg = msg[:maxCommitMsg]
		}
		if resp, err := s.c.Do(ctx, "PUT", "/steps/locals/"+url.PathEscape(name)+"/commitmsg", strings.NewReader(msg), int64(len(msg))); err == nil {
			resp.Body.Close()
		} else {
			s.o.Log.Warn("commit message not kept", "rev", "locals/"+name, "err", err)
		}
	}
	cmd := map[string]string{"op": "LOCAL_RUN", "payload": "locals/" + name}
	if err := s.c.JSON(ctx, "POST", "/commands", cmd, nil); err != nil {
		pvrError(w, statusOf(err), "post: run locals/%s: %v", name, err)
		return
	}
	full := sha256.Sum256(state)
	writeJSON(w, http.StatusOK, map[string]any{
		"state-sha":  hex.EncodeToString(full[:]),
		"rev":        -1, // a local revision: pvr prints "locals/<rev>"
		"trail-id":   "local",
		"revision":   "locals/" + name,
		"commit-msg": p.CommitMsg,
	})
}

// postName picks the local revision name: locals/<rev> as pvr reports it
// when that name is free, else a fresh pvr-<epoch>-<sha8>.
func (s *Server) postName(ctx context.Context, rev int64, sha8 string) (string, error) {
	if rev >= 0 {
		n := strconv.FormatInt(rev, 10)
		resp, err := s.c.Do(ctx, "GET", "/steps/locals/"+n, nil, 0)
		if isNotFound(err) {
			return n, nil
		}
		if err != nil {
			return "", err
		}
		resp.Body.Close()
	}
	return fmt.Sprintf("pvr-%d-%s", s.o.Now().Unix(), sha8), nil
}
