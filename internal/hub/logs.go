package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxLogs bounds the entries the Hub keeps (the oldest go first).
const maxLogs = 200000

// LogEntry is one device log line as pantahub-base's logs service keeps
// it: what the device posted plus dev, own, id and time-created.
type LogEntry struct {
	ID          string    `json:"id"`
	Device      string    `json:"dev"`
	Owner       string    `json:"own"`
	Src         string    `json:"src"`
	Msg         string    `json:"msg"`
	Lvl         string    `json:"lvl"`
	Tsec        int64     `json:"tsec"`
	Tnano       int64     `json:"tnano"`
	Plat        string    `json:"plat,omitempty"`
	Rev         string    `json:"rev,omitempty"`
	TimeCreated time.Time `json:"time-created"`
}

// postLogs is POST /logs/ (devices): one entry or an array of them; src
// and msg are mandatory. A batch with a bad entry is refused whole, so a
// device retrying it never leaves half a batch behind.
func (s *Server) postLogs(w http.ResponseWriter, r *http.Request, c *Claims) {
	if c.Type != "DEVICE" {
		apiError(w, http.StatusForbidden, "only devices post logs")
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		apiError(w, http.StatusBadRequest, "bad body")
		return
	}
	in, err := parseLogs(b)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	now := s.now()
	s.mu.Lock()
	own := c.Owner // the owner now, not the one frozen into the token
	if d := s.devices[strings.TrimPrefix(c.PRN, "prn:::devices:/")]; d != nil {
		own = d.Owner
	}
	for _, e := range in {
		e.ID, e.Device, e.Owner, e.TimeCreated = newID(), c.PRN, own, now
		s.logs = append(s.logs, e)
	}
	if n := len(s.logs) - maxLogs; n > 0 {
		s.logs = append(s.logs[:0:0], s.logs[n:]...)
	}
	s.stats.LogEntries += int64(len(in))
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, in)
}

// parseLogs reads one entry or an array of them; every entry needs src
// and msg.
func parseLogs(b []byte) ([]LogEntry, error) {
	var in []LogEntry
	var err error
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '[' {
		err = json.Unmarshal(b, &in)
	} else {
		var e LogEntry
		err = json.Unmarshal(b, &e)
		in = []LogEntry{e}
	}
	if err != nil {
		return nil, fmt.Errorf("bad log entries: %w", err)
	}
	for _, e := range in {
		if e.Src == "" || e.Msg == "" {
			return nil, errors.New("log entries need src and msg")
		}
	}
	return in, nil
}

// getLogs is GET /logs/ (users): the entries of the user's devices in the
// order received, paged with start= and page= (default 50), optionally
// only one device's (dev=<device prn or id>).
func (s *Server) getLogs(w http.ResponseWriter, r *http.Request, c *Claims) {
	q := r.URL.Query()
	start, _ := strconv.Atoi(q.Get("start"))
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 50
	}
	start = max(start, 0)
	dev := q.Get("dev")
	if dev != "" && len(dev) == 24 {
		dev = devicePRN(dev)
	}
	s.mu.Lock()
	var mine []LogEntry
	for _, e := range s.logs {
		if e.Owner == c.PRN && (dev == "" || e.Device == dev) {
			mine = append(mine, e)
		}
	}
	s.mu.Unlock()
	out := mine[min(start, len(mine)):min(start+page, len(mine))]
	writeJSON(w, http.StatusOK, map[string]any{"count": len(mine), "start": start, "page": page, "entries": out})
}
