// Package progress models the update progress of a revision: the JSON
// document pantavisor keeps in trails/<rev>/.pv/progress and reports to
// Pantahub.
//
// The wire format is upstream's, field names and order included:
//
//	{"status":"DONE","status-msg":"Factory revision","progress":100,"retries":0}
//
// with an optional "downloads" object (only while DOWNLOADING) and an
// optional "logs" string. Build values with New so the fixed progress
// number of each status is always right:
//
//	p := progress.New(progress.Done, progress.MsgFactory)
//	b, _ := json.Marshal(p)
//	q, err := progress.Parse(b)
package progress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Status is the state of a revision update as written to its progress file.
type Status string

// Statuses written by the device. NEW is StatusNew because New is the
// constructor.
const (
	StatusNew   Status = "NEW"
	Queued      Status = "QUEUED"
	Downloading Status = "DOWNLOADING"
	Inprogress  Status = "INPROGRESS"
	Testing     Status = "TESTING"
	Updated     Status = "UPDATED"
	Done        Status = "DONE"
	Wontgo      Status = "WONTGO"
	Error       Status = "ERROR"
)

// Statuses used by Pantahub only; the device accepts them when reading a
// progress document but never writes them.
const (
	Syncing   Status = "SYNCING"
	Cancelled Status = "CANCELLED"
)

// Progress returns the fixed progress number of s (0 for unknown statuses).
func (s Status) Progress() int {
	switch s {
	case StatusNew:
		return 0
	case Queued:
		return 5
	case Downloading:
		return 25
	case Inprogress:
		return 50
	case Testing:
		return 75
	case Updated, Done, Wontgo, Error:
		return 100
	}
	return 0
}

// Final reports whether s ends an update: DONE, UPDATED, WONTGO or ERROR.
func (s Status) Final() bool {
	switch s {
	case Done, Updated, Wontgo, Error:
		return true
	}
	return false
}

// Failed reports whether s is a failure: WONTGO or ERROR.
func (s Status) Failed() bool {
	return s == Wontgo || s == Error
}

// Valid reports whether s is a status known to the device or to Pantahub.
func (s Status) Valid() bool {
	switch s {
	case StatusNew, Queued, Downloading, Inprogress, Testing, Updated, Done, Wontgo, Error, Syncing, Cancelled:
		return true
	}
	return false
}

// Progress is the progress document of one revision.
type Progress struct {
	Status    Status     `json:"status"`
	Msg       string     `json:"status-msg"`
	Progress  int        `json:"progress"`
	Retries   int        `json:"retries"`
	Downloads *Downloads `json:"downloads,omitempty"`
	Logs      string     `json:"logs,omitempty"`
}

// Downloads is the download report attached while DOWNLOADING.
type Downloads struct {
	Total   Download   `json:"total"`
	Objects []Download `json:"objects,omitempty"`
}

// Download describes the transfer of one object, or of all of them when
// ObjectName is "total" and ObjectID is "none".
type Download struct {
	ObjectName      string `json:"object_name"`
	ObjectID        string `json:"object_id"`
	TotalSize       int64  `json:"total_size"`
	TotalDownloaded int64  `json:"total_downloaded"`
	StartTime       int64  `json:"start_time"`
	CurrentTime     int64  `json:"current_time"`
}

// New returns a progress with status s, message msg and the fixed
// progress number of s. Retries is left at zero.
func New(s Status, msg string) Progress {
	return Progress{Status: s, Msg: msg, Progress: s.Progress()}
}

// Final reports whether p.Status ends an update.
func (p Progress) Final() bool { return p.Status.Final() }

// Failed reports whether p.Status is WONTGO or ERROR.
func (p Progress) Failed() bool { return p.Status.Failed() }

// ErrBadProgress is wrapped by every error of Parse.
var ErrBadProgress = errors.New("bad progress")

// MarshalJSON writes p in upstream's field order without HTML escaping.
// Note that json.Marshal re-escapes <, > and & in its output (still the
// same JSON value); call MarshalJSON directly for upstream's exact bytes,
// as storage does for .pv/progress.
func (p Progress) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"status":`)
	writeString(&b, string(p.Status))
	b.WriteString(`,"status-msg":`)
	writeString(&b, p.Msg)
	b.WriteString(`,"progress":`)
	b.WriteString(strconv.Itoa(p.Progress))
	b.WriteString(`,"retries":`)
	b.WriteString(strconv.Itoa(p.Retries))
	if p.Downloads != nil {
		d, err := json.Marshal(p.Downloads)
		if err != nil {
			return nil, fmt.Errorf("marshal downloads: %w", err)
		}
		b.WriteString(`,"downloads":`)
		b.Write(d)
	}
	if p.Logs != "" {
		b.WriteString(`,"logs":`)
		writeString(&b, p.Logs)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	b.Truncate(b.Len() - 1)
}

// wire is the lenient shape used while decoding.
type wire struct {
	Status    *string         `json:"status"`
	Msg       *string         `json:"status-msg"`
	Progress  json.RawMessage `json:"progress"`
	Retries   json.RawMessage `json:"retries"`
	Downloads *Downloads      `json:"downloads"`
	Logs      json.RawMessage `json:"logs"`
}

// UnmarshalJSON decodes a progress document; see Parse for the rules.
func (p *Progress) UnmarshalJSON(data []byte) error {
	q, err := Parse(data)
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Parse decodes and validates a progress document. "status" must be a
// known status; "progress" and "retries" must be integers when present
// (a missing "progress" gets the status' fixed number). "logs" may be a
// string or, as older releases wrote it, any JSON value, which is kept as
// its JSON text. Unknown fields are ignored.
func Parse(data []byte) (Progress, error) {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return Progress{}, fmt.Errorf("%w: %w", ErrBadProgress, err)
	}
	if w.Status == nil {
		return Progress{}, fmt.Errorf("%w: status: missing", ErrBadProgress)
	}
	p := Progress{Status: Status(*w.Status), Downloads: w.Downloads}
	if !p.Status.Valid() {
		return Progress{}, fmt.Errorf("%w: status: unknown status %q", ErrBadProgress, *w.Status)
	}
	if w.Msg != nil {
		p.Msg = *w.Msg
	}
	var err error
	p.Progress = p.Status.Progress()
	if p.Progress, err = intField("progress", w.Progress, p.Progress); err != nil {
		return Progress{}, err
	}
	if p.Retries, err = intField("retries", w.Retries, 0); err != nil {
		return Progress{}, err
	}
	if p.Retries < 0 {
		return Progress{}, fmt.Errorf("%w: retries: negative value %d", ErrBadProgress, p.Retries)
	}
	if len(w.Logs) > 0 && string(w.Logs) != "null" {
		var s string
		if json.Unmarshal(w.Logs, &s) == nil {
			p.Logs = s
		} else {
			p.Logs = string(w.Logs)
		}
	}
	return p, nil
}

func intField(name string, raw json.RawMessage, def int) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return def, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: not an integer: %s", ErrBadProgress, name, raw)
	}
	return int(n), nil
}
