//go:build cgo && linux

package lxc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

// benchmarkStart starts n containers from already mounted squashfs volumes
// (mounting is excluded), reporting the time to get all of them running
// (ns/op) and the time to stop them again (stop-ms/op).
func benchmarkStart(b *testing.B, n int) {
	needLXC(b)
	worlds := make([]*world, n)
	for i := range worlds {
		worlds[i] = newWorld(b, fmt.Sprintf("bench%d", i), "")
		worlds[i].spec.LogLevel = "ERROR"
	}
	ctx := context.Background()
	var stop time.Duration
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		cs := make([]*Container, n)
		banners := make([]chan struct{}, n)
		for i, w := range worlds {
			c, err := Start(ctx, quietLog, w.spec)
			if err != nil {
				b.Fatalf("Start(%s) error = %v", w.spec.Name, err)
			}
			banner := make(chan struct{})
			go func() {
				br := bufio.NewReader(c.Console())
				br.ReadString('\n')
				close(banner)
				io.Copy(io.Discard, br)
				c.Console().Close()
			}()
			banners[i] = banner
			cs[i] = c
		}
		b.StopTimer()
		// Stop only once init has installed its halt trap (its banner).
		for _, ch := range banners {
			<-ch
		}
		t0 := time.Now()
		for _, c := range cs {
			if err := c.Stop(ctx); err != nil {
				b.Errorf("Stop() error = %v", err)
			}
		}
		stop += time.Since(t0)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "stop-ms/op")
	for _, w := range worlds {
		w.finish(b)
	}
}

func BenchmarkStart1(b *testing.B) { benchmarkStart(b, 1) }

func BenchmarkStart5(b *testing.B) { benchmarkStart(b, 5) }

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))
