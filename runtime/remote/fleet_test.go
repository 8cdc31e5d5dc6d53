package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
)

// meter counts one device's traffic: requests, and body bytes both ways
// (headers and TLS are not counted), and notes when its DONE progress
// reached the Hub.
type meter struct {
	next     http.RoundTripper
	reqs     atomic.Int64
	bytes    atomic.Int64
	doneAt   atomic.Int64 // Unix ns of the DONE progress PUT answered 200
	counting atomic.Bool
}

func (m *meter) RoundTrip(r *http.Request) (*http.Response, error) {
	done := false
	if r.Body != nil && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/progress") {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		done = bytes.Contains(b, []byte(`"status":"DONE"`))
	}
	resp, err := m.next.RoundTrip(r)
	if !m.counting.Load() {
		return resp, err
	}
	m.reqs.Add(1)
	if r.ContentLength > 0 {
		m.bytes.Add(r.ContentLength)
	}
	if err != nil {
		return resp, err
	}
	if done && resp.StatusCode == http.StatusOK {
		m.doneAt.Store(time.Now().UnixNano())
	}
	resp.Body = &countingBody{resp.Body, &m.bytes}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkFleetUpdate is the load test of issue 16: 50 claimed, idle
// devices on loopback against one Hub; the owner posts revision 1 (a new
// 1 MiB object) to every device at once and each takes it to DONE
// (download, sha256 check, the fake daemon's INPROGRESS/TESTING/DONE).
// Per device it reports the median requests, body bytes and time from the
// post to DONE on the Hub, and the Hub's requests per device. The
// devices poll every 250 ms (PH_UPDATER_INTERVAL is 60 s on a device), so
// the time is dominated by the polls an update needs, scaled down.
func BenchmarkFleetUpdate(b *testing.B) {
	const fleet = 50
	const poll = 250 * time.Millisecond
	content := bytes.Repeat([]byte("fleet root "), 1<<20/11)
	sum := sha256.Sum256(content)
	sha := hex.EncodeToString(sum[:])
	for range b.N {
		l := newLab(b, map[string]string{"tok": "user1"})
		ctx, cancel := context.WithCancel(context.Background())
		meters := make([]*meter, fleet)
		clients := make([]*Client, fleet)
		done := make(chan struct{}, fleet)
		for i := range clients {
			conf := config.New(nil)
			conf.Set("PH_FACTORY_AUTOTOK", "tok", config.PHConf)
			dir := b.TempDir()
			meters[i] = &meter{next: http.DefaultTransport}
			clients[i] = New(Options{Config: conf, ConfigPath: filepath.Join(dir, "pantahub.config"), RunDir: dir,
				BaseURL: l.srv.URL, RetryMin: 50 * time.Millisecond, RetryMax: time.Second, PollInterval: poll,
				IdleInterval: time.Hour, HTTP: &http.Client{Transport: meters[i], Timeout: 30 * time.Second},
				Updates: newFakeUpdates(b, l.shas),
				Factory: func() (Revision, error) {
					return Revision{State: l.state, Open: func(sha string) (*os.File, error) {
						return os.Open(filepath.Join(l.objects, sha))
					}}, nil
				}})
			go func() { clients[i].Run(ctx); done <- struct{}{} }()
		}
		for _, c := range clients {
			for c.State() != StateIdle {
				time.Sleep(time.Millisecond)
			}
		}
		u := l.user("user1")
		var put struct {
			URL string `json:"signed-puturl"`
		}
		if code := u("POST", "/objects/", map[string]string{"objectname": "root.squashfs", "sha256sum": sha,
			"size": fmt.Sprint(len(content))}, &put); code != 200 {
			b.Fatalf("post object: %d", code)
		}
		req, _ := http.NewRequest("PUT", put.URL, bytes.NewReader(content))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("upload: %v %v", err, resp)
		}
		resp.Body.Close()
		var state map[string]any
		json.Unmarshal(l.state, &state)
		state["app/root.squashfs"] = sha
		before := l.hub.Stats()
		for _, m := range meters {
			m.counting.Store(true)
		}
		start := time.Now()
		for _, c := range clients {
			if code := u("POST", "/trails/"+c.id+"/steps", map[string]any{"rev": 1, "commit-msg": "fleet update",
				"state": state}, nil); code != 200 {
				b.Fatalf("post step: %d", code)
			}
		}
		deadline := time.Now().Add(2 * time.Minute)
		for _, m := range meters {
			for m.doneAt.Load() == 0 {
				if time.Now().After(deadline) {
					b.Fatal("the fleet did not reach DONE in 2 minutes")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		all := time.Since(start)
		cancel()
		for range clients {
			<-done
		}
		var reqs, byts, secs []float64
		for _, m := range meters {
			reqs = append(reqs, float64(m.reqs.Load()))
			byts = append(byts, float64(m.bytes.Load()))
			secs = append(secs, time.Duration(m.doneAt.Load()-start.UnixNano()).Seconds())
		}
		after := l.hub.Stats()
		b.ReportMetric(median(reqs), "req/device")
		b.ReportMetric(median(byts), "bytes/device")
		b.ReportMetric(median(secs), "s-to-DONE/device")
		b.ReportMetric(slices.Max(secs), "s-to-DONE-max")
		b.ReportMetric(all.Seconds(), "s-fleet")
		b.ReportMetric(float64(after.Requests-before.Requests)/fleet, "hub-req/device")
		b.ReportMetric(float64(after.BlobBytesServed-before.BlobBytesServed)/fleet, "hub-blob-bytes/device")
		l.srv.Close()
	}
}
