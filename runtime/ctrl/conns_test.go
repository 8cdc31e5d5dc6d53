package ctrl

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// flood opens n connections to path, sends each a request and returns
// those the server answered (kept open) and how many it closed unanswered.
func flood(t *testing.T, path string, n int) (open []net.Conn, refused int) {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("unix", path)
		if err != nil {
			refused++ // the backlog was full
			continue
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		if answered(c, "/buildinfo") {
			open = append(open, c)
			continue
		}
		c.Close()
		refused++
	}
	t.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	return open, refused
}

// answered sends GET path on c and reports whether any answer came back
// (a connection refused at accept is closed without one).
func answered(c net.Conn, path string) bool {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	req, _ := http.NewRequest("GET", "http://localhost"+path, nil)
	if err := req.Write(c); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// TestConnFlood: non-mgmt callers flooding the socket get at most their
// share, and host and mgmt callers are still served from the reserve
// (issue 11, defect 6).
func TestConnFlood(t *testing.T) {
	proc := t.TempDir()
	self := os.Getpid()
	h := New(Options{ProcRoot: proc, BuildInfo: "bi",
		Platforms: platforms{"admin": true, "app": false, "web": false, "db": false, "log": false},
		MaxConns:  40, MaxCallerConns: 8, ReservedConns: 10})
	_, path := listen(t, h)

	// Four nobody platforms: 8 connections each, 30 together (40 - 10).
	want := map[string]int{"app": 8, "web": 8, "db": 8, "log": 6}
	for _, name := range []string{"app", "web", "db", "log"} {
		fakeCgroup(t, proc, self, "0::/lxc/"+name+"\n")
		open, refused := flood(t, path, 100)
		if len(open) != want[name] || refused != 100-want[name] {
			t.Errorf("flood from %s: %d kept, %d refused, want %d kept", name, len(open), refused, want[name])
		}
	}
	// Unknown callers share one bound, and none is left for them anyway.
	fakeCgroup(t, proc, self, "0::/lxc/stranger\n")
	if open, _ := flood(t, path, 10); len(open) != 0 {
		t.Errorf("flood from an unknown caller: %d kept, want 0", len(open))
	}

	// A mgmt platform flooding too gets the reserve but the host's part
	// of it (half of 10): the host is still served.
	fakeCgroup(t, proc, self, "0::/lxc/admin\n")
	mg, _ := flood(t, path, 100)
	if len(mg) != 5 {
		t.Errorf("flood from a mgmt platform: %d kept, want 5", len(mg))
	}
	for _, c := range mg {
		if got := get(t, c, "/buildinfo"); got != http.StatusOK {
			t.Errorf("GET /buildinfo as mgmt during the flood = %d, want 200", got)
		}
	}
	var held []net.Conn
	fakeCgroup(t, proc, self, "0::/\n")
	for range 5 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := get(t, c, "/buildinfo"); got != http.StatusOK {
			t.Errorf("GET /buildinfo as the host during the flood = %d, want 200", got)
		}
		held = append(held, c)
	}
	// The total is reached: even the host waits for a slot now.
	fakeCgroup(t, proc, self, "0::/\n")
	if open, _ := flood(t, path, 1); len(open) != 0 {
		t.Errorf("connection over MaxConns kept open")
	}

	// A closed connection gives its slot back.
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		ok := answered(c, "/buildinfo")
		c.Close()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot of a closed connection never released")
		}
	}
}

// TestConnTimeouts: a connection that never sends a request, or stays idle
// after one, is closed and its slot freed.
func TestConnTimeouts(t *testing.T) {
	proc := t.TempDir()
	self := os.Getpid()
	fakeCgroup(t, proc, self, "0::/lxc/app\n")
	h := New(Options{ProcRoot: proc, BuildInfo: "bi", Platforms: platforms{"app": false},
		MaxCallerConns: 2, ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 100 * time.Millisecond})
	_, path := listen(t, h)
	for _, request := range []bool{false, true} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		if request && !answered(c, "/buildinfo") {
			t.Fatal("first connection refused")
		}
		// The server closes it: the read ends (the deadline only guards
		// the test against a hang).
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("silent connection (request sent %v) got data", request)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("silent connection (request sent %v) never closed by the server", request)
		}
		c.Close()
	}
}

// TestConnFloodFigures floods with the default limits and reports the
// figures of issue 11's closing note (go test -run ConnFloodFigures -v).
func TestConnFloodFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("figures only")
	}
	proc := t.TempDir()
	self := os.Getpid()
	h := New(Options{ProcRoot: proc, BuildInfo: "bi", Platforms: platforms{"app": false}})
	_, path := listen(t, h)
	fakeCgroup(t, proc, self, "0::/lxc/app\n")
	const n = 5000
	open, refused := flood(t, path, n)
	fakeCgroup(t, proc, self, "0::/\n")
	const hostN = 200
	ok := 0
	for range hostN {
		c, err := net.Dial("unix", path)
		if err != nil {
			continue
		}
		if get(t, c, "/buildinfo") == http.StatusOK {
			ok++
		}
		c.Close()
	}
	t.Logf("flood from one nobody caller: %d connections attempted, %d kept open, %d closed at accept; host: %d/%d requests answered 200",
		n, len(open), refused, ok, hostN)
	if len(open) > DefaultMaxCallerConns || ok != hostN {
		t.Errorf("kept %d (want ≤ %d), host %d/%d", len(open), DefaultMaxCallerConns, ok, hostN)
	}
}

// countWarn counts the records at warn level or above.
type countWarn struct {
	mu sync.Mutex
	n  int
}

func (c *countWarn) Enabled(context.Context, slog.Level) bool { return true }
func (c *countWarn) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return nil
}
func (c *countWarn) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *countWarn) WithGroup(string) slog.Handler      { return c }

// TestConnRefusalsLogQuietly: a caller that closes its connections and
// floods again, over and over, gets one warning, not one per cycle
// (issue 11: a nobody container must not fill the log).
func TestConnRefusalsLogQuietly(t *testing.T) {
	proc := t.TempDir()
	fakeCgroup(t, proc, os.Getpid(), "0::/lxc/app\n")
	var logs countWarn
	h := New(Options{ProcRoot: proc, Log: slog.New(&logs), Platforms: platforms{"app": false}, MaxCallerConns: 2})
	_, path := listen(t, h)
	for range 5 {
		open, _ := flood(t, path, 4)
		if len(open) != 2 {
			t.Fatalf("flood kept %d, want 2", len(open))
		}
		for _, c := range open {
			c.Close()
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			h.conns.mu.Lock()
			n := h.conns.total
			h.conns.mu.Unlock()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d connections still counted after closing them", n)
			}
		}
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if logs.n != 1 {
		t.Errorf("%d refusal warnings for 5 floods, want 1", logs.n)
	}
}
