package remote

import (
	"context"
	"os"
	"path/filepath"
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
