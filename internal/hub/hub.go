// Package hub is a Pantacor Hub compatible server: the device-facing API of
// pantahub-base (registration, auto-tokens, challenge/claim, RS256 logins,
// device and user metadata, trails, steps, progress, objects behind signed
// URLs) kept in memory. It serves the device tests and a lab of a few
// devices (`go run ./cmd/pvhub`). Paths, status codes and JSON shapes follow
// pantahub-base; the store is one mutex-guarded set of maps (no call under
// the lock blocks).
package hub

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configure a Server.
type Options struct {
	// Users are the accounts (name -> password); nil gives pantahub-base's
	// demo accounts user1/user1 … user3/user3.
	Users map[string]string
	// AutoTokens are factory auto-tokens known from the start (token ->
	// owner user name), as `POST /devices/tokens` would create them.
	AutoTokens map[string]string
	// TokenTTL is the lifetime of access tokens (default 1h).
	TokenTTL time.Duration
	// BlobRate limits each object download to this many bytes per
	// second (0: none), so a lab can cut a download halfway.
	BlobRate int64
	// Meter, when set, counts each device's traffic (see Meter).
	Meter *Meter
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Server is an in-memory Hub. Its zero value is not usable; call New.
type Server struct {
	key     *rsa.PrivateKey
	blobKey []byte
	ttl     time.Duration
	rate    int64
	meter   *Meter
	now     func() time.Time
	log     *slog.Logger
	mux     *http.ServeMux

	mu         sync.Mutex
	users      map[string]string // name -> password
	autoTokens map[string]autoToken
	devices    map[string]*device
	trails     map[string]*trail
	objects    map[string][]byte // sha256 -> content; nil until uploaded
	objMeta    map[string]object
	logs       []LogEntry
	stats      Stats
}

// Stats count what the server handled, for load figures.
type Stats struct {
	Requests    int64
	Registered  int64
	Logins      int64
	ObjectBytes int64
	// BlobBytesServed counts object bytes sent by signed GETs (what
	// devices downloaded, resumed ranges included).
	BlobBytesServed int64
	LogEntries      int64 // log lines devices posted
}

type autoToken struct {
	Owner    string
	UserMeta map[string]string
}

type device struct {
	ID         string
	PRN        string
	Nick       string
	Owner      string
	Secret     string
	Challenge  string
	DeviceMeta map[string]any
	UserMeta   map[string]any
	Created    time.Time
}

type trail struct {
	ID    string
	Owner string
	Steps []*step
}

type step struct {
	Rev       int            `json:"rev"`
	TrailID   string         `json:"trail-id"`
	Owner     string         `json:"owner"`
	Device    string         `json:"device"`
	CommitMsg string         `json:"commit-msg"`
	State     map[string]any `json:"state"`
	StateSHA  string         `json:"state-sha"`
	Progress  Progress       `json:"progress"`
	Meta      map[string]any `json:"meta"`
	Created   time.Time      `json:"step-time"`
	Updated   time.Time      `json:"progress-time"`
}

// Progress is a step's progress as the device reports it.
type Progress struct {
	Status    string         `json:"status"`
	StatusMsg string         `json:"status-msg"`
	Progress  int            `json:"progress"`
	Log       string         `json:"log"`
	Downloads map[string]any `json:"downloads,omitempty"`
}

type object struct {
	Name string
	SHA  string
	Size int64
}

// New makes a Server with a fresh RS256 signing key.
func New(o Options) (*Server, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("hub key: %w", err)
	}
	s := &Server{key: key, blobKey: make([]byte, 32), ttl: o.TokenTTL, rate: o.BlobRate, meter: o.Meter, now: o.Now, log: o.Log,
		users: o.Users, autoTokens: map[string]autoToken{}, devices: map[string]*device{},
		trails: map[string]*trail{}, objects: map[string][]byte{}, objMeta: map[string]object{}}
	rand.Read(s.blobKey)
	if s.ttl == 0 {
		s.ttl = time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.users == nil {
		s.users = map[string]string{"user1": "user1", "user2": "user2", "user3": "user3"}
	}
	for tok, owner := range o.AutoTokens {
		s.autoTokens[tok] = autoToken{Owner: userPRN(owner)}
	}
	s.routes()
	return s, nil
}

// PublicKey is the key device tokens are signed with.
func (s *Server) PublicKey() *rsa.PublicKey { return &s.key.PublicKey }

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	s.mu.Unlock()
	if c := requestConn(r); c != nil {
		c.reqs.Add(1)
	}
	s.mux.ServeHTTP(w, r)
}

func userPRN(name string) string { return "prn:pantahub.com:auth:/" + name }

func devicePRN(id string) string { return "prn:::devices:/" + id }

// newID is a 24-hex id, the shape of pantahub-base's Mongo object ids.
func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var words = []string{"amber", "brisk", "cedar", "delta", "ember", "fable", "grove", "harbor",
	"iris", "jade", "kite", "lumen", "maple", "nova", "orbit", "pine", "quartz", "raven",
	"sable", "tidal", "umber", "vivid", "willow", "yonder", "zephyr"}

// newChallenge is a word-word-word claim challenge like pantahub-base's.
func newChallenge() string {
	b := make([]byte, 3)
	rand.Read(b)
	var w []string
	for _, x := range b {
		w = append(w, words[int(x)%len(words)])
	}
	return strings.Join(w, "-")
}
