package pantavisor_test

import (
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/pantavisor"
	"github.com/pantavisor/pantavisor-go/runtime/pantavisor/updater"
)

// TestUpdateNoReboot runs a non-reboot LOCAL_RUN through the real daemon,
// runtime/update and real containers.
func TestUpdateNoReboot(t *testing.T) {
	pantavisor.RunUpdateNoReboot(t, updater.New, false, false)
}

// TestUpdateCrashRollsBack: a container of the new revision crashing
// without auto-recovery fails the update (ERROR) and rolls back.
func TestUpdateCrashRollsBack(t *testing.T) {
	pantavisor.RunUpdateNoReboot(t, updater.New, true, false)
}

// TestUpdateBadRevision: a revision naming an unknown group is refused;
// the running revision is not disturbed.
func TestUpdateBadRevision(t *testing.T) {
	pantavisor.RunUpdateNoReboot(t, updater.New, false, true)
}

// BenchmarkUpdateNoReboot times a non-reboot update of one container,
// from LOCAL_RUN to the new revision's container STARTED, next to a plain
// start of the same container (issue 5).
func BenchmarkUpdateNoReboot(b *testing.B) {
	var start, update time.Duration
	for b.Loop() {
		s, u := pantavisor.MeasureUpdateNoReboot(b, updater.New)
		start += s
		update += u
	}
	ms := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(b.N) }
	b.ReportMetric(ms(update), "update-ms/op")
	b.ReportMetric(ms(start), "start-ms/op")
	b.ReportMetric(ms(update-start), "overhead-ms/op")
}
