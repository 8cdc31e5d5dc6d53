package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gcWorld stores revs revisions of perRev objects each, revision r using
// objects [r*shift, r*shift+perRev), all of size objSize, and
// materialises them. Objects are written without fsync to keep the
// setup fast.
type gcWorld struct {
	s    *Storage
	shas []string
}

func newGCWorld(t testing.TB, revs, perRev, shift, objSize int) *gcWorld {
	t.Helper()
	s := newStorage(t)
	w := &gcWorld{s: s}
	n := (revs-1)*shift + perRev
	buf := make([]byte, objSize)
	for i := 0; i < n; i++ {
		copy(buf, fmt.Sprintf("object %08d ", i))
		sha := shaOf(buf)
		if err := os.WriteFile(s.ObjectPath(sha), buf, 0o644); err != nil {
			t.Fatal(err)
		}
		w.shas = append(w.shas, sha)
	}
	for r := 0; r < revs; r++ {
		kv := map[string]any{}
		for i := 0; i < perRev; i++ {
			kv[fmt.Sprintf("app%d/f%05d", i%8, i)] = w.shas[r*shift+i]
		}
		st := stateOf(t, kv)
		if err := s.Materialize(strconv.Itoa(r), st); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func TestGC(t *testing.T) {
	const objSize = 100
	w := newGCWorld(t, 6, 4, 2, objSize) // rev r uses objects 2r..2r+3; 14 objects
	s := w.s
	if err := os.MkdirAll(filepath.Join(s.Root(), "logs/1/pantavisor"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Root(), "logs/1/pantavisor/pantavisor.log"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.Root(), "disks/rev/1/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteStateJSON("locals/old", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCurrent("3"); err != nil {
		t.Fatal(err)
	}
	// An object uploaded for the update, not linked yet.
	pending := putContent(t, s, "pending object")
	orphan := putContent(t, s, "orphan object")
	// A crashed put long ago, and one in progress.
	staleTmp := s.ObjectPath(orphan) + ".tmp123"
	freshTmp := s.ObjectPath(pending) + ".tmp456"
	for _, p := range []string{staleTmp, freshTmp} {
		if err := os.WriteFile(p, make([]byte, 50), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-time.Hour)
	os.Chtimes(staleTmp, long, long)

	var wantFreed int64
	// Revisions 0, 1 and locals/old go; 2 (done), 3 (current), 5 (update) stay;
	// 4 is the running revision.
	keep := GCKeep{Running: "4", Update: "5", Done: "2", Objects: []string{pending}}
	gone := map[string]bool{}
	for _, i := range []int{0, 1, 2, 3} { // only used by revisions 0 and 1
		gone[w.shas[i]] = true
		wantFreed += objSize
	}
	wantFreed += 1000                                                                     // log file
	wantFreed += int64(len("{}"))                                                         // locals/old .pvr/json
	wantFreed += int64(len(readFile(t, filepath.Join(s.TrailDir("0"), ".pvr/json")))) * 2 // .pvr/json of 0 and 1
	wantFreed += int64(len(readFile(t, filepath.Join(s.TrailDir("0"), ".pvr/config")))) * 2
	wantFreed += int64(len("orphan object")) + 50 // orphan and stale temp
	got, err := s.GC(keep)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if got != wantFreed {
		t.Errorf("GC reclaimed %d bytes, want %d", got, wantFreed)
	}
	revs, _ := s.Revisions()
	if want := "2,3,4,5"; strings.Join(revs, ",") != want {
		t.Errorf("Revisions after GC = %v, want %s", revs, want)
	}
	for _, p := range []string{"logs/1", "disks/rev/1", "trails/locals/old"} {
		if _, err := os.Stat(filepath.Join(s.Root(), p)); !os.IsNotExist(err) {
			t.Errorf("%s after GC: %v, want gone", p, err)
		}
	}
	for i, sha := range w.shas {
		if got := s.HasObject(sha); got == gone[sha] {
			t.Errorf("object %d present = %v, want %v", i, got, !gone[sha])
		}
	}
	if !s.HasObject(pending) || s.HasObject(orphan) {
		t.Errorf("pending kept = %v, orphan kept = %v; want true, false", s.HasObject(pending), s.HasObject(orphan))
	}
	if _, err := os.Stat(staleTmp); !os.IsNotExist(err) {
		t.Errorf("stale temp kept: %v", err)
	}
	if _, err := os.Stat(freshTmp); err != nil {
		t.Errorf("fresh temp removed: %v", err)
	}
	// Nothing left to do.
	if got, err := s.GC(keep); err != nil || got != 0 {
		t.Errorf("second GC = %d, %v, want 0, nil", got, err)
	}
}

func TestGCKeepFactory(t *testing.T) {
	for _, tc := range []struct {
		factory bool
		want    string
	}{
		{false, "2"},
		{true, "0,2"},
	} {
		w := newGCWorld(t, 3, 2, 1, 10)
		if _, err := w.s.GC(GCKeep{Running: "2", KeepFactory: tc.factory}); err != nil {
			t.Fatal(err)
		}
		revs, _ := w.s.Revisions()
		sort.Strings(revs)
		if got := strings.Join(revs, ","); got != tc.want {
			t.Errorf("GC(KeepFactory=%v) left %s, want %s", tc.factory, got, tc.want)
		}
	}
}

// BenchmarkGC collects 48 of 50 revisions of 2000 objects each (each
// object shared by two neighbouring revisions, 1 KiB each).
func BenchmarkGC(b *testing.B) {
	const revs, perRev, objSize = 50, 2000, 1024
	var reclaimed int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w := newGCWorld(b, revs, perRev, perRev/2, objSize)
		if err := w.s.SetCurrent(strconv.Itoa(revs - 1)); err != nil {
			b.Fatal(err)
		}
		// Measure on a settled filesystem, as on a device where the old
		// revisions were written long ago.
		syscall.Sync()
		b.StartTimer()
		n, err := w.s.GC(GCKeep{Running: strconv.Itoa(revs - 1), Done: strconv.Itoa(revs - 2)})
		if err != nil {
			b.Fatal(err)
		}
		reclaimed = n
	}
	b.ReportMetric(float64(reclaimed)/(1<<20), "MiB-reclaimed")
}
