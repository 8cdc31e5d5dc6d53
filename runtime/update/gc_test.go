package update

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

func TestGCKeepRules(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("0", with(baseState(), map[string]any{"web/root.squashfs": "factory-web"}))
	d.addRev("2", with(baseState(), map[string]any{"app/root.squashfs": "old-2"}))
	d.addRev("locals/junk", with(baseState(), map[string]any{"app/root.squashfs": "junk"}))
	d.addRev("4", appChange())
	// run 4 as a non-reboot update: it is the running and the update revision
	if _, err := run(d, command.OpLocalRun, "4"); err != nil {
		t.Fatal(err)
	}
	k := d.u.Keep()
	if k.Running != "4" || k.Update != "4" || k.Done != "1" || k.KeepFactory {
		t.Errorf("Keep = %+v", k)
	}
	if _, err := run(d, command.OpRunGC, ""); err != nil {
		t.Fatal(err)
	}
	revs, _ := d.st.Revisions()
	if want := []string{"1", "4"}; !slices.Equal(revs, want) {
		t.Errorf("revisions after GC = %v, want %v", revs, want)
	}
	for _, gone := range []string{"junk", "old-2", "factory-web"} {
		if d.st.HasObject(sha(gone)) {
			t.Errorf("object %q survived GC", gone)
		}
	}
	d.wantObjectsOf("1")
	d.wantObjectsOf("4")

	// KeepFactory keeps 0
	d2 := newDevice(t, "grub")
	d2.addRev("0", with(baseState(), map[string]any{"web/root.squashfs": "factory-web"}))
	d2.addRev("3", appChange())
	u, _ := New(Options{Storage: d2.st, Bootloader: d2.bl, GC: GCPolicy{KeepFactory: true}})
	u.Resume("1", "")
	if _, err := u.GC(); err != nil {
		t.Fatal(err)
	}
	revs, _ = d2.st.Revisions()
	if want := []string{"0", "1"}; !slices.Equal(revs, want) {
		t.Errorf("revisions after GC with KeepFactory = %v, want %v", revs, want)
	}
}

func TestGCKeepsArmedTry(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", bspChange())
	run(d, command.OpLocalRun, "2") // reboot pending
	if _, err := d.u.GC(); err != nil {
		t.Fatal(err)
	}
	d.wantObjectsOf("2")
	// a new boot before Resume of anything: pv_try alone keeps it
	u, _ := New(Options{Storage: d.st, Bootloader: d.openBL("pv_rev=1 pv_try=2")})
	if k := u.Keep(); k.Update != "2" {
		t.Errorf("Keep().Update = %q, want the armed pv_try", k.Update)
	}
}

func TestGCThreshold(t *testing.T) {
	usage := storage.Usage{Total: 1000, Free: 200, Reserved: 50, RealFree: 150} // 15 %
	tests := []struct {
		name      string
		threshold int
		upload    time.Duration // since the last upload; <0 none
		usage     storage.Usage
		err       error
		want      bool
	}{
		{"disabled", 0, -1, usage, nil, false},
		{"above threshold", 10, -1, usage, nil, false},
		{"below threshold", 20, -1, usage, nil, true},
		{"equal is not below", 15, -1, usage, nil, false},
		{"deferred after upload", 20, 599 * time.Second, usage, nil, false},
		{"defer over", 20, 600 * time.Second, usage, nil, true},
		{"empty fs", 20, -1, storage.Usage{}, nil, false},
		{"usage error", 20, -1, usage, errors.New("statfs"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDevice(t, "grub")
			cur, curErr := tt.usage, tt.err
			u, _ := New(Options{Storage: d.st, Bootloader: d.bl, Clock: d.clock, GC: GCPolicy{Threshold: tt.threshold,
				Usage: func() (storage.Usage, error) { return cur, curErr }}})
			u.Resume("1", "")
			if tt.upload >= 0 {
				u.ObjectsUploaded()
				d.clock.Advance(tt.upload)
			}
			got, err := u.NeedGC()
			if got != tt.want || (err != nil) != (tt.err != nil) {
				t.Errorf("NeedGC = %v, %v, want %v (err %v)", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestGCThresholdRunsInStep(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("3", appChange())
	u, _ := New(Options{Storage: d.st, Bootloader: d.bl, Clock: d.clock, GC: GCPolicy{Threshold: 50,
		Usage: func() (storage.Usage, error) { return storage.Usage{Total: 100, RealFree: 10}, nil }}})
	u.Resume("1", "")
	u.ObjectsUploaded()
	u.Step(t.Context())
	if !d.st.HasRevision("3") {
		t.Fatal("GC ran inside the defer time")
	}
	d.clock.Advance(DefaultGCDeferTime)
	u.Step(t.Context())
	if d.st.HasRevision("3") {
		t.Error("GC did not run below the threshold")
	}
	d.wantObjectsOf("1")
}

// BenchmarkGC collects a storage of 50 revisions sharing 2,000 objects
// through the policy layer, keeping the running and committed ones.
func BenchmarkGC(b *testing.B) {
	const revs, objects, size = 50, 2000, 4096
	var reclaimed int64
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		st, err := storage.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		payload := make([]byte, size)
		for r := 1; r <= revs; r++ {
			m := with(baseState(), nil)
			for i := 0; i < objects/revs; i++ {
				n := (r-1)*(objects/revs) + i
				copy(payload, fmt.Sprintf("object %d", n))
				m[fmt.Sprintf("app/data%02d.bin", i)] = string(payload)
			}
			dd := &device{t: nil, st: st}
			dd.addRevB(b, fmt.Sprint(r), m)
		}
		bl := openBLB(b, dir)
		u, _ := New(Options{Storage: st, Bootloader: bl})
		u.Resume("50", "")
		b.StartTimer()
		n, err := u.GC()
		if err != nil {
			b.Fatal(err)
		}
		reclaimed = n
	}
	b.ReportMetric(float64(reclaimed), "bytes-reclaimed")
}

// The objects of a remote download in flight (Hold) survive the GC though
// no trail links them; released, they go.
func TestGCKeepsHeldObjects(t *testing.T) {
	d := newDevice(t, "grub")
	held, loose := sha("downloaded"), sha("loose")
	for _, c := range []string{"downloaded", "loose"} {
		if _, err := d.st.PutObject(sha(c), strings.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
	d.u.Hold([]string{held})
	if _, err := d.u.GC(); err != nil {
		t.Fatal(err)
	}
	if !d.st.HasObject(held) || d.st.HasObject(loose) {
		t.Errorf("after GC: held %v (want true), loose %v (want false)", d.st.HasObject(held), d.st.HasObject(loose))
	}
	d.u.Hold(nil)
	if _, err := d.u.GC(); err != nil {
		t.Fatal(err)
	}
	if d.st.HasObject(held) {
		t.Error("released object survived GC")
	}
}
