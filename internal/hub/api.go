package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds JSON bodies; maxObject bounds uploaded objects.
const (
	maxBody   = 4 << 20
	maxObject = 1 << 30
)

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /auth/login", s.login)
	m.HandleFunc("GET /auth/login", s.refresh)
	m.HandleFunc("POST /devices/", s.register)
	m.HandleFunc("POST /devices/tokens", s.auth(s.newAutoToken))
	m.HandleFunc("GET /devices/{id}", s.auth(s.getDevice))
	m.HandleFunc("PUT /devices/{id}", s.auth(s.claim))
	m.HandleFunc("PUT /devices/{id}/device-meta", s.auth(s.putMeta(false, true)))
	m.HandleFunc("PATCH /devices/{id}/device-meta", s.auth(s.putMeta(true, true)))
	m.HandleFunc("GET /devices/{id}/device-meta", s.auth(s.getMeta(true)))
	m.HandleFunc("GET /devices/{id}/user-meta", s.auth(s.getMeta(false)))
	m.HandleFunc("PUT /devices/{id}/user-meta", s.auth(s.putMeta(false, false)))
	m.HandleFunc("PATCH /devices/{id}/user-meta", s.auth(s.putMeta(true, false)))
	m.HandleFunc("GET /trails/", s.auth(s.listTrails))
	m.HandleFunc("POST /trails/", s.auth(s.postTrail))
	m.HandleFunc("GET /trails/{id}/steps", s.auth(s.listSteps))
	m.HandleFunc("POST /trails/{id}/steps", s.auth(s.postStep))
	m.HandleFunc("GET /trails/{id}/steps/{rev}", s.auth(s.getStep))
	m.HandleFunc("GET /trails/{id}/steps/{rev}/state", s.auth(s.getStepState))
	m.HandleFunc("PUT /trails/{id}/steps/{rev}/progress", s.auth(s.putProgress))
	// pvr's side: .pvrremote and the per-step objects endpoint.
	m.HandleFunc("GET /trails/{id}/.pvrremote", s.auth(s.pvrRemote))
	m.HandleFunc("GET /trails/{id}/steps/{rev}/.pvrremote", s.auth(s.pvrRemote))
	m.HandleFunc("POST /trails/{id}/steps/{rev}/objects/", s.auth(s.postObject))
	m.HandleFunc("GET /trails/{id}/steps/{rev}/objects/{sha}", s.auth(s.getObject))
	m.HandleFunc("POST /objects/", s.auth(s.postObject))
	m.HandleFunc("GET /objects/{sha}", s.auth(s.getObject))
	m.HandleFunc("POST /logs/", s.auth(s.postLogs))
	m.HandleFunc("GET /logs/", s.auth(s.getLogs))
	m.HandleFunc("PUT /local-s3/{tok}", s.putBlob)
	m.HandleFunc("GET /local-s3/{tok}", s.getBlob)
	s.mux = m
}

// apiError is pantahub-base's error body.
func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"Error": msg, "Code": code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func readJSON(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v)
}

type handler func(w http.ResponseWriter, r *http.Request, c *Claims)

// auth checks the bearer token; failures answer 401 with the realm header
// pvr uses to find the login endpoint.
func (s *Server) auth(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.claims(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `JWT realm="pantahub services", ph-aeps="`+baseURL(r)+`/auth"`)
			apiError(w, http.StatusUnauthorized, "Invalid or expired token")
			return
		}
		if mc := requestConn(r); mc != nil && c.Type == "DEVICE" && mc.device.Load() == nil {
			id := strings.TrimPrefix(c.ID, "prn:::devices:/")
			mc.device.CompareAndSwap(nil, &id)
		}
		h(w, r, c)
	}
}

func (s *Server) claims(r *http.Request) (*Claims, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, false
	}
	var c Claims
	if verifyRS256(&s.key.PublicKey, tok, &c) != nil || s.now().Unix() >= c.Exp {
		return nil, false
	}
	return &c, true
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) issue(c Claims) (string, error) {
	now := s.now()
	c.Exp = now.Add(s.ttl).Unix()
	if c.OrigIat == 0 {
		c.OrigIat = now.Unix()
	}
	return signRS256(s.key, c)
}

// login answers POST /auth/login for users (name/password) and devices
// (prn/secret). The device's owner is copied into the token now and never
// refreshed, as pantahub-base does.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := readJSON(r, &req); err != nil {
		apiError(w, http.StatusBadRequest, "bad login body")
		return
	}
	var c Claims
	s.mu.Lock()
	if id, ok := strings.CutPrefix(req.Username, "prn:::devices:/"); ok {
		d := s.devices[id]
		if d != nil && d.Secret == req.Password {
			c = Claims{ID: d.PRN, Nick: d.Nick, Owner: d.Owner, PRN: d.PRN, Roles: "device", Type: "DEVICE"}
		}
	} else if pw, ok := s.users[req.Username]; ok && pw == req.Password {
		c = Claims{ID: userPRN(req.Username), Nick: req.Username, PRN: userPRN(req.Username), Roles: "user", Type: "USER"}
	}
	if c.PRN != "" {
		s.stats.Logins++
	}
	s.mu.Unlock()
	if c.PRN == "" {
		apiError(w, http.StatusUnauthorized, "incorrect username or password")
		return
	}
	tok, err := s.issue(c)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// refresh answers GET /auth/login: the same claims, a new expiry.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	c, ok := s.claims(r)
	if !ok {
		apiError(w, http.StatusUnauthorized, "Invalid or expired token")
		return
	}
	tok, err := s.issue(*c)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// deviceJSON is the device document as pantahub-base returns it.
func deviceJSON(d *device, withSecret bool) map[string]any {
	m := map[string]any{"id": d.ID, "prn": d.PRN, "nick": d.Nick, "owner": d.Owner,
		"challenge": d.Challenge, "time-created": d.Created, "public": false,
		"device-meta": maps.Clone(d.DeviceMeta), "user-meta": maps.Clone(d.UserMeta)}
	if withSecret {
		m["secret"] = d.Secret
	}
	return m
}

// register answers POST /devices/: a new unclaimed device with a
// challenge or, with a valid auto-token, a device owned at once.
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("User-Agent") == "" {
		apiError(w, http.StatusForbidden, "Incompatible Client")
		return
	}
	var req struct {
		Secret string `json:"secret"`
	}
	if err := readJSON(r, &req); err != nil || req.Secret == "" {
		apiError(w, http.StatusBadRequest, "a device needs a secret")
		return
	}
	id := newID()
	d := &device{ID: id, PRN: devicePRN(id), Nick: "__unregistered__" + id[len(id)-6:], Secret: req.Secret,
		Challenge: newChallenge(), DeviceMeta: map[string]any{}, UserMeta: map[string]any{}, Created: s.now()}
	tok := r.Header.Get("Pantahub-Devices-Auto-Token-V1")
	s.mu.Lock()
	if tok != "" {
		at, ok := s.autoTokens[tok]
		if !ok {
			s.mu.Unlock()
			apiError(w, http.StatusUnauthorized, "invalid auto token")
			return
		}
		d.Owner, d.Challenge, d.Nick = at.Owner, "", "device-"+id[len(id)-6:]
		for k, v := range at.UserMeta {
			d.UserMeta[k] = v
		}
	}
	s.devices[id] = d
	s.stats.Registered++
	out := deviceJSON(d, true)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// newAutoToken answers POST /devices/tokens for a user.
func (s *Server) newAutoToken(w http.ResponseWriter, r *http.Request, c *Claims) {
	if c.Type != "USER" {
		apiError(w, http.StatusForbidden, "only users make auto tokens")
		return
	}
	var req struct {
		DefaultUserMeta map[string]string `json:"default-user-meta"`
	}
	readJSON(r, &req) // an empty body is a token without default metadata
	tok := newID() + newID()
	s.mu.Lock()
	s.autoTokens[tok] = autoToken{Owner: c.PRN, UserMeta: req.DefaultUserMeta}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "owner": c.PRN, "default-user-meta": req.DefaultUserMeta})
}

// device returns the device id names if c may see it: the device
// itself or its owner. Called with s.mu held.
func (s *Server) device(id string, c *Claims) (*device, int) {
	d := s.devices[id]
	if d == nil {
		return nil, http.StatusNotFound
	}
	if c.PRN != d.PRN && (d.Owner == "" || c.PRN != d.Owner) {
		return nil, http.StatusForbidden
	}
	return d, 0
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request, c *Claims) {
	s.mu.Lock()
	d, code := s.device(r.PathValue("id"), c)
	var out map[string]any
	if d != nil {
		out = deviceJSON(d, false)
	}
	s.mu.Unlock()
	if d == nil {
		apiError(w, code, http.StatusText(code))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// claim answers PUT /devices/<id>?challenge=<c> by a user.
func (s *Server) claim(w http.ResponseWriter, r *http.Request, c *Claims) {
	ch := r.URL.Query().Get("challenge")
	if c.Type != "USER" || ch == "" {
		apiError(w, http.StatusForbidden, "claiming needs a user and a challenge")
		return
	}
	s.mu.Lock()
	d := s.devices[r.PathValue("id")]
	ok := d != nil && d.Owner == "" && d.Challenge == ch
	var out map[string]any
	if ok {
		d.Owner, d.Challenge, d.Nick = c.PRN, "", "device-"+d.ID[len(d.ID)-6:]
		out = deviceJSON(d, false)
	}
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusConflict, "no unclaimed device with that challenge")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getMeta(devmeta bool) handler {
	return func(w http.ResponseWriter, r *http.Request, c *Claims) {
		s.mu.Lock()
		d, code := s.device(r.PathValue("id"), c)
		var out map[string]any
		if d != nil {
			out = maps.Clone(d.UserMeta)
			if devmeta {
				out = maps.Clone(d.DeviceMeta)
			}
		}
		s.mu.Unlock()
		if d == nil {
			apiError(w, code, http.StatusText(code))
			return
		}
		// Devices poll this: an ETag lets an unchanged set cost a 304
		// and no body.
		b, _ := json.Marshal(out)
		sum := sha256.Sum256(b)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
}

// putMeta answers PUT (replace) and PATCH (merge; null deletes) of
// device-meta (written by the device) and user-meta (by the owner). Keys
// are stored as sent, dots included (pantahub-base escapes them for its
// database on PUT; its PATCH fails on them, which this server does not
// copy); a key already escaped with U+FF0E is stored unescaped.
func (s *Server) putMeta(patch, devmeta bool) handler {
	return func(w http.ResponseWriter, r *http.Request, c *Claims) {
		var body map[string]any
		if err := readJSON(r, &body); err != nil {
			apiError(w, http.StatusBadRequest, "metadata must be a JSON object")
			return
		}
		s.mu.Lock()
		d, code := s.device(r.PathValue("id"), c)
		if d != nil && devmeta != (c.PRN == d.PRN) {
			d, code = nil, http.StatusForbidden
		}
		var out map[string]any
		if d != nil {
			m := &d.UserMeta
			if devmeta {
				m = &d.DeviceMeta
			}
			if !patch {
				*m = map[string]any{}
			}
			for k, v := range body {
				k = strings.ReplaceAll(k, "\uff0e", ".")
				if v == nil {
					delete(*m, k)
				} else {
					(*m)[k] = v
				}
			}
			out = maps.Clone(*m)
		}
		s.mu.Unlock()
		if d == nil {
			apiError(w, code, http.StatusText(code))
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// stateSHA is the sha256 of the state's JSON as Go marshals it (sorted
// keys), a stable id for the state.
func stateSHA(state map[string]any) string {
	b, _ := json.Marshal(state)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (s *Server) trailJSON(t *trail) map[string]any {
	last := t.Steps[len(t.Steps)-1]
	return map[string]any{"id": t.ID, "owner": t.Owner, "device": devicePRN(t.ID),
		"last-touched": last.Updated, "factory-state": t.Steps[0].State}
}

func (s *Server) listTrails(w http.ResponseWriter, r *http.Request, c *Claims) {
	out := []map[string]any{}
	s.mu.Lock()
	for _, t := range s.trails {
		if devicePRN(t.ID) == c.PRN || (t.Owner != "" && t.Owner == c.PRN) {
			out = append(out, s.trailJSON(t))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// postTrail answers POST /trails/ from a device: its factory revision.
// The trail id is the device id; the owner is the token's (frozen at
// login); rev 0 starts DONE. A second post is 409.
func (s *Server) postTrail(w http.ResponseWriter, r *http.Request, c *Claims) {
	id, ok := strings.CutPrefix(c.PRN, "prn:::devices:/")
	if c.Type != "DEVICE" || !ok {
		apiError(w, http.StatusForbidden, "only devices post trails")
		return
	}
	var state map[string]any
	if err := readJSON(r, &state); err != nil {
		apiError(w, http.StatusBadRequest, "state must be a JSON object")
		return
	}
	now := s.now()
	st := &step{Rev: 0, TrailID: id, Owner: c.Owner, Device: c.PRN, CommitMsg: "Factory State (rev 0)",
		State: state, StateSHA: stateSHA(state), Meta: map[string]any{},
		Progress: Progress{Status: "DONE", StatusMsg: "Factory revision", Progress: 100}, Created: now, Updated: now}
	s.mu.Lock()
	_, exists := s.trails[id]
	if !exists {
		s.trails[id] = &trail{ID: id, Owner: c.Owner, Steps: []*step{st}}
	}
	var out map[string]any
	if !exists {
		out = s.trailJSON(s.trails[id])
	}
	s.mu.Unlock()
	if exists {
		apiError(w, http.StatusConflict, "trail exists")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// trail returns the trail if c is its device or owner. s.mu held.
func (s *Server) trail(id string, c *Claims) (*trail, int) {
	t := s.trails[id]
	if t == nil {
		return nil, http.StatusNotFound
	}
	if devicePRN(id) != c.PRN && (t.Owner == "" || t.Owner != c.PRN) {
		return nil, http.StatusForbidden
	}
	return t, 0
}

// statusFilter parses progress.status from a steps query: a plain
// status or pantavisor's {"$in":[…]}; none means NEW, as pantahub-base.
func statusFilter(q url.Values) ([]string, error) {
	v := q.Get("progress.status")
	if v == "" {
		return []string{"NEW"}, nil
	}
	if !strings.HasPrefix(v, "{") {
		return []string{v}, nil
	}
	var f struct {
		In []string `json:"$in"`
	}
	if err := json.Unmarshal([]byte(v), &f); err != nil {
		return nil, err
	}
	return f.In, nil
}

func (s *Server) listSteps(w http.ResponseWriter, r *http.Request, c *Claims) {
	statuses, err := statusFilter(r.URL.Query())
	if err != nil {
		apiError(w, http.StatusBadRequest, "bad progress.status filter")
		return
	}
	out := []step{}
	s.mu.Lock()
	t, code := s.trail(r.PathValue("id"), c)
	if t != nil {
		for _, st := range t.Steps {
			if slices.Contains(statuses, st.Progress.Status) {
				out = append(out, *st)
			}
		}
	}
	s.mu.Unlock()
	if t == nil {
		apiError(w, code, http.StatusText(code))
		return
	}
	// A device polls this every few seconds: an unchanged answer is a
	// 304 without a body when it sends the ETag back.
	b, err := json.Marshal(out)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// postStep answers POST /trails/<id>/steps by the owner: a new NEW step.
func (s *Server) postStep(w http.ResponseWriter, r *http.Request, c *Claims) {
	var req struct {
		Rev       *int           `json:"rev"`
		CommitMsg string         `json:"commit-msg"`
		State     map[string]any `json:"state"`
	}
	if err := readJSON(r, &req); err != nil || req.State == nil {
		apiError(w, http.StatusBadRequest, "a step needs a state")
		return
	}
	now := s.now()
	s.mu.Lock()
	t, code := s.trail(r.PathValue("id"), c)
	var out step
	if t != nil && (c.Type != "USER" || t.Owner != c.PRN) {
		t, code = nil, http.StatusForbidden
	}
	if t != nil {
		rev := t.Steps[len(t.Steps)-1].Rev + 1
		if req.Rev != nil && *req.Rev != rev && *req.Rev != -1 {
			t, code = nil, http.StatusConflict
		} else {
			st := &step{Rev: rev, TrailID: t.ID, Owner: t.Owner, Device: devicePRN(t.ID), CommitMsg: req.CommitMsg,
				State: req.State, StateSHA: stateSHA(req.State), Meta: map[string]any{},
				Progress: Progress{Status: "NEW"}, Created: now, Updated: now}
			t.Steps = append(t.Steps, st)
			out = *st
		}
	}
	s.mu.Unlock()
	if t == nil {
		apiError(w, code, http.StatusText(code))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// pvrRemote answers .pvrremote for a trail (its last step) or one step,
// so `pvr clone/post <hub>/trails/<id>` work against this server.
func (s *Server) pvrRemote(w http.ResponseWriter, r *http.Request, c *Claims) {
	s.mu.Lock()
	t, code := s.trail(r.PathValue("id"), c)
	rev := -1
	if t != nil {
		rev = t.Steps[len(t.Steps)-1].Rev
		if v := r.PathValue("rev"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > rev {
				t, code = nil, http.StatusNotFound
			}
			rev = n
		}
	}
	s.mu.Unlock()
	if t == nil {
		apiError(w, code, http.StatusText(code))
		return
	}
	base := baseURL(r) + "/trails/" + r.PathValue("id")
	step := base + "/steps/" + strconv.Itoa(rev)
	writeJSON(w, http.StatusOK, map[string]any{"pvr-spec": "pvr-pantahub-1", "json-get-url": step + "/state",
		"json-key": "state", "objects-endpoint": step + "/objects", "post-url": base + "/steps",
		"post-fields": []string{"commit-msg"}, "post-fields-opt": []string{"rev"}})
}

// step returns rev of trail id. s.mu held.
func (s *Server) step(r *http.Request, c *Claims) (*step, int) {
	t, code := s.trail(r.PathValue("id"), c)
	if t == nil {
		return nil, code
	}
	rev, err := strconv.Atoi(r.PathValue("rev"))
	if err != nil || rev < 0 || rev >= len(t.Steps) {
		return nil, http.StatusNotFound
	}
	return t.Steps[rev], 0
}

func (s *Server) getStep(w http.ResponseWriter, r *http.Request, c *Claims) {
	s.mu.Lock()
	st, code := s.step(r, c)
	var out step
	if st != nil {
		out = *st
	}
	s.mu.Unlock()
	if st == nil {
		apiError(w, code, http.StatusText(code))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getStepState(w http.ResponseWriter, r *http.Request, c *Claims) {
	s.mu.Lock()
	st, code := s.step(r, c)
	var out map[string]any
	if st != nil {
		out = st.State
	}
	s.mu.Unlock()
	if st == nil {
		apiError(w, code, http.StatusText(code))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// putProgress answers PUT …/steps/<rev>/progress from the device; the
// stored progress is echoed back.
func (s *Server) putProgress(w http.ResponseWriter, r *http.Request, c *Claims) {
	var p Progress
	if err := readJSON(r, &p); err != nil || p.Status == "" {
		apiError(w, http.StatusBadRequest, "progress needs a status")
		return
	}
	s.mu.Lock()
	st, code := s.step(r, c)
	if st != nil && c.PRN != st.Device {
		st, code = nil, http.StatusForbidden
	}
	if st != nil {
		st.Progress, st.Updated = p, s.now()
	}
	s.mu.Unlock()
	if st == nil {
		apiError(w, code, http.StatusText(code))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func validSHA(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// objectJSON describes an object with a signed URL for method.
func (s *Server) objectJSON(r *http.Request, o object, method string) (map[string]any, error) {
	tok, err := signHS256(s.blobKey, blobClaims{SHA: o.SHA, Method: method, Exp: s.now().Add(s.ttl).Unix()})
	if err != nil {
		return nil, err
	}
	u := baseURL(r) + "/local-s3/" + tok
	m := map[string]any{"id": o.SHA, "objectname": o.Name, "sha256sum": o.SHA, "size": strconv.FormatInt(o.Size, 10),
		"mime-type": "application/octet-stream", "storage-id": o.SHA}
	if method == http.MethodPut {
		m["signed-puturl"] = u
	} else {
		m["signed-geturl"] = u
	}
	return m, nil
}

// postObject answers POST /objects/: 409 (Pantahub-Object-Type: object)
// when the content is already stored, else a signed upload URL.
func (s *Server) postObject(w http.ResponseWriter, r *http.Request, c *Claims) {
	var req struct {
		Name string `json:"objectname"`
		SHA  string `json:"sha256sum"`
		Size string `json:"size"`
	}
	if err := readJSON(r, &req); err != nil || !validSHA(req.SHA) {
		apiError(w, http.StatusBadRequest, "an object needs a sha256sum")
		return
	}
	size, err := strconv.ParseInt(req.Size, 10, 64)
	if err != nil || size < 0 || size > maxObject {
		apiError(w, http.StatusBadRequest, "bad object size")
		return
	}
	o := object{Name: req.Name, SHA: req.SHA, Size: size}
	s.mu.Lock()
	_, have := s.objects[req.SHA]
	if !have {
		s.objMeta[req.SHA] = o
	}
	s.mu.Unlock()
	if have {
		w.Header().Set("Pantahub-Object-Type", "object")
		apiError(w, http.StatusConflict, "object exists")
		return
	}
	out, err := s.objectJSON(r, o, http.MethodPut)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, c *Claims) {
	sha := r.PathValue("sha")
	s.mu.Lock()
	o, ok := s.objMeta[sha]
	_, have := s.objects[sha]
	s.mu.Unlock()
	if !ok || !have {
		apiError(w, http.StatusNotFound, "no such object")
		return
	}
	out, err := s.objectJSON(r, o, http.MethodGet)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

var errBlob = errors.New("bad signed url")

func (s *Server) blob(r *http.Request, method string) (string, error) {
	var bc blobClaims
	if err := verifyHS256(s.blobKey, r.PathValue("tok"), &bc); err != nil {
		return "", errBlob
	}
	if bc.Method != method || s.now().Unix() >= bc.Exp || !validSHA(bc.SHA) {
		return "", errBlob
	}
	return bc.SHA, nil
}

// putBlob stores an upload if its content has the signed sha256.
func (s *Server) putBlob(w http.ResponseWriter, r *http.Request) {
	sha, err := s.blob(r, http.MethodPut)
	if err != nil {
		apiError(w, http.StatusForbidden, err.Error())
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxObject+1))
	if err != nil || len(b) > maxObject {
		apiError(w, http.StatusBadRequest, "upload failed")
		return
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != sha {
		apiError(w, http.StatusBadRequest, "content does not match sha256sum")
		return
	}
	s.mu.Lock()
	s.objects[sha] = b
	s.stats.ObjectBytes += int64(len(b))
	if _, ok := s.objMeta[sha]; !ok {
		s.objMeta[sha] = object{SHA: sha, Name: sha, Size: int64(len(b))}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// getBlob serves an object with Range support, so downloads can resume.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request) {
	sha, err := s.blob(r, http.MethodGet)
	if err != nil {
		apiError(w, http.StatusForbidden, err.Error())
		return
	}
	s.mu.Lock()
	b, ok := s.objects[sha]
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "no such object")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	cw := &countingWriter{ResponseWriter: w, rate: s.rate, ctx: r.Context()}
	http.ServeContent(cw, r, sha, time.Time{}, bytes.NewReader(b))
	s.mu.Lock()
	s.stats.BlobBytesServed += cw.n
	s.mu.Unlock()
}

// countingWriter counts the body bytes written and, with a rate, paces
// them (in chunks of a tenth of a second's worth).
type countingWriter struct {
	http.ResponseWriter
	n    int64
	rate int64
	ctx  context.Context
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.rate <= 0 {
		n, err := c.ResponseWriter.Write(b)
		c.n += int64(n)
		return n, err
	}
	chunk := max(int(c.rate/10), 1)
	total := 0
	for len(b) > 0 {
		k := min(chunk, len(b))
		n, err := c.ResponseWriter.Write(b[:k])
		c.n += int64(n)
		total += n
		if err != nil {
			return total, err
		}
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		b = b[k:]
		t := time.NewTimer(time.Second / 10)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return total, c.ctx.Err()
		case <-t.C:
		}
	}
	return total, nil
}
