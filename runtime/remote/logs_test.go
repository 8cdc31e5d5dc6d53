package remote

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
)

// Logs queued while the Hub refuses them (an outage: 503 on /logs/) all
// reach it once it is back, in order, in batches; empty lines are dropped.
func TestLogPushSurvivesOutage(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var posts atomic.Int64
	l := newLabWith(t, map[string]string{"tok": "user1"}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/logs/" && r.Method == http.MethodPost {
				if down.Load() {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				posts.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	const n = 1200
	q := make(chan LogEntry, n+1)
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok"})
	c.o.Logs = q
	l.run(c)
	q <- LogEntry{Src: "pantavisor.log", Plat: "pantavisor", Msg: ""}
	for i := range n {
		q <- LogEntry{Plat: "pantavisor", Msg: fmt.Sprintf("line %d", i), Lvl: "INFO", Tsec: int64(i)}
	}
	l.await("idle", func() bool { return c.State() == StateIdle })
	l.await("a failed push", func() bool { _, failed := c.Contact(); return !failed.IsZero() })
	down.Store(false)
	l.await("every line pushed", func() bool { return c.LogsPushed() == n })

	u := l.user("user1")
	var out struct {
		Count   int `json:"count"`
		Entries []struct {
			Src, Msg, Plat string
			Tsec           int64
		} `json:"entries"`
	}
	if code := u("GET", "/logs/?start=0&page=2000", nil, &out); code != 200 {
		t.Fatalf("GET /logs/: %d", code)
	}
	if out.Count != n || len(out.Entries) != n {
		t.Fatalf("hub has %d entries (%d listed), want %d", out.Count, len(out.Entries), n)
	}
	for i, e := range out.Entries {
		if e.Msg != fmt.Sprintf("line %d", i) || e.Src != "pantavisor" || e.Tsec != int64(i) {
			t.Fatalf("entry %d = %+v", i, e)
		}
	}
	if p := posts.Load(); p < n/maxLogBatch || p > n/maxLogBatch+2 {
		t.Errorf("%d posts for %d lines (batches of %d)", p, n, maxLogBatch)
	}
}
