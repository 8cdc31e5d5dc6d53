package remote

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
)

// BenchmarkFleetFirstBoot boots 50 auto-token devices at once against one
// Hub on loopback, each from register to idle (factory trail posted), and
// reports the Hub's requests per device.
func BenchmarkFleetFirstBoot(b *testing.B) {
	const fleet = 50
	for range b.N {
		l := newLab(b, map[string]string{"tok": "user1"})
		ctx, cancel := context.WithCancel(context.Background())
		clients := make([]*Client, fleet)
		done := make(chan struct{}, fleet)
		for i := range clients {
			conf := config.New(nil)
			conf.Set("PH_FACTORY_AUTOTOK", "tok", config.PHConf)
			dir := b.TempDir()
			clients[i] = New(Options{Config: conf, ConfigPath: filepath.Join(dir, "pantahub.config"), RunDir: dir,
				BaseURL: l.srv.URL, RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
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
		cancel()
		for range clients {
			<-done
		}
		st := l.hub.Stats()
		b.ReportMetric(float64(st.Requests)/fleet, "req/device")
		l.srv.Close()
	}
}

// countingWriter counts response bytes.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	w.n.Add(int64(len(b)))
	return w.ResponseWriter.Write(b)
}

// BenchmarkIdleHour measures what an idle, claimed device costs the link:
// requests and body bytes (both ways) per idle refresh, scaled to an hour
// at the default IdleInterval (10 min jittered over [5, 10]: 8 per hour
// on average). Headers and TLS are not counted.
func BenchmarkIdleHour(b *testing.B) {
	var reqs, in, out atomic.Int64
	l := newLabWith(b, map[string]string{"tok": "user1"}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqs.Add(1)
			if r.ContentLength > 0 {
				in.Add(r.ContentLength)
			}
			h.ServeHTTP(countingWriter{w, &out}, r)
		})
	})
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Reach idle, then count refreshes only.
	c.o.IdleInterval = time.Hour
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	for c.State() != StateIdle {
		time.Sleep(time.Millisecond)
	}
	reqs.Store(0)
	in.Store(0)
	out.Store(0)
	b.ResetTimer()
	for range b.N {
		if err := c.refresh(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cancel()
	<-done
	perHour := 3600 / (7.5 * 60)
	b.ReportMetric(float64(reqs.Load())/float64(b.N)*perHour, "req/idle-hour")
	b.ReportMetric(float64(in.Load()+out.Load())/float64(b.N)*perHour, "body-bytes/idle-hour")
}

// BenchmarkIdleStepsPoll measures what the idle steps poll costs the link:
// requests and body bytes (both ways) per poll of an unchanged list (a
// conditional GET answered 304), and per hour at the default
// PH_UPDATER_INTERVAL (60 s jittered over [30, 60]: 80 per hour on
// average). Headers and TLS are not counted.
func BenchmarkIdleStepsPoll(b *testing.B) {
	var reqs, in, out, hdr atomic.Int64
	l := newLabWith(b, map[string]string{"tok": "user1"}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqs.Add(1)
			if r.ContentLength > 0 {
				in.Add(r.ContentLength)
			}
			hdr.Add(int64(len(r.Method) + len(r.URL.RequestURI()) + headerBytes(r.Header)))
			h.ServeHTTP(countingWriter{w, &out}, r)
			hdr.Add(int64(headerBytes(w.Header())))
		})
	})
	c := l.client(map[string]string{"PH_FACTORY_AUTOTOK": "tok"})
	c.o.Updates = newFakeUpdates(nil, l.shas)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Reach idle; then stop the loop and poll by hand.
	c.o.IdleInterval = time.Hour
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.Run(rctx); close(done) }()
	for c.State() != StateIdle {
		time.Sleep(time.Millisecond)
	}
	stop()
	<-done
	if err := c.findUpdate(ctx); err != nil { // the first full answer
		b.Fatal(err)
	}
	reqs.Store(0)
	in.Store(0)
	out.Store(0)
	hdr.Store(0)
	b.ResetTimer()
	for range b.N {
		if err := c.findUpdate(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	perHour := 3600 / 45.0 // polls per hour at a mean interval of 45 s
	b.ReportMetric(float64(reqs.Load())/float64(b.N)*perHour, "req/idle-hour")
	b.ReportMetric(float64(in.Load()+out.Load())/float64(b.N)*perHour, "body-bytes/idle-hour")
	b.ReportMetric(float64(hdr.Load())/float64(b.N)*perHour, "header-bytes/idle-hour")
}

// headerBytes approximates h on the wire ("Key: value\r\n").
func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
