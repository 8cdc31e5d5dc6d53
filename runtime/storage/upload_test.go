package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

func upload(t *testing.T, s *Storage, body string) *StateUpload {
	t.Helper()
	u, err := s.NewStateUpload(int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	if n, err := u.ReadFrom(strings.NewReader(body)); err != nil || n != int64(len(body)) {
		t.Fatalf("ReadFrom = %d, %v", n, err)
	}
	return u
}

// TestReplaceStateInUse: the revisions a device runs, tries, commits or
// may fall back to, and those once installed, are immutable (issue 11,
// defect 5); a revision only uploaded may be uploaded again.
func TestReplaceStateInUse(t *testing.T) {
	s := newStorage(t)
	for _, rev := range []string{"0", "locals/run", "locals/try", "locals/done", "locals/cur", "locals/old", "locals/new"} {
		if err := s.WriteStateJSON(rev, strings.NewReader("old")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetCurrent("locals/cur"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDone("locals/old"); err != nil {
		t.Fatal(err)
	}
	keep := GCKeep{Running: "locals/run", Update: "locals/try", Done: "locals/done"}
	ready := progress.New(progress.StatusNew, progress.MsgReady)
	for _, tt := range []struct {
		rev string
		ok  bool
	}{
		{"0", false}, {"locals/run", false}, {"locals/try", false}, {"locals/done", false},
		{"locals/cur", false}, {"locals/old", false}, {"locals/new", true}, {"locals/fresh", true},
	} {
		u := upload(t, s, "new")
		err := s.CheckReplaceable(tt.rev, keep)
		rerr := s.ReplaceState(tt.rev, u, ready, keep)
		u.Close()
		if tt.ok {
			if err != nil || rerr != nil {
				t.Errorf("%s: CheckReplaceable = %v, ReplaceState = %v, want nil", tt.rev, err, rerr)
			}
			if b, _ := s.StateJSON(tt.rev); string(b) != "new" {
				t.Errorf("%s: state after ReplaceState = %q, want new", tt.rev, b)
			}
			if p, err := s.Progress(tt.rev); err != nil || p.Status != progress.StatusNew {
				t.Errorf("%s: progress after ReplaceState = %v, %v, want NEW", tt.rev, p, err)
			}
			continue
		}
		if !errors.Is(err, ErrInUse) || !errors.Is(rerr, ErrInUse) {
			t.Errorf("%s: CheckReplaceable = %v, ReplaceState = %v, want ErrInUse", tt.rev, err, rerr)
		}
		if b, _ := s.StateJSON(tt.rev); string(b) != "old" {
			t.Errorf("%s: state after a refused ReplaceState = %q, want old", tt.rev, b)
		}
		if _, err := s.Progress(tt.rev); err == nil {
			t.Errorf("%s: a refused ReplaceState wrote a progress", tt.rev)
		}
	}
	if names := dotEntries(t, s.trailsDir()); len(names) != 0 {
		t.Errorf("trails/ after the uploads = %v, want no spool file", names)
	}
}

// TestRemoveTemporaries: what a power cut leaves of writes in flight is
// gone after RemoveTemporaries, however recent; GC alone keeps recent
// ones (a write may be running beside it).
func TestRemoveTemporaries(t *testing.T) {
	s := newStorage(t)
	if err := s.WriteStateJSON("1", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	sha := shaOf([]byte("x"))
	temps := []string{
		filepath.Join(s.objectsDir(), sha+".tmp123"),
		filepath.Join(s.trailsDir(), uploadPrefix+"42"),
		filepath.Join(s.trailsDir(), "1", ".pvr", ".json.tmp99"),
		filepath.Join(s.trailsDir(), "1", ".pv", ".progress.tmp7"),
	}
	for _, p := range temps {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mat := filepath.Join(s.trailsDir(), ".materialize-2-x")
	if err := os.MkdirAll(filepath.Join(mat, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(GCKeep{Running: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(temps[0]); err != nil {
		t.Errorf("GC removed a fresh temp object: %v", err)
	}
	n, err := s.RemoveTemporaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(temps, mat) {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after RemoveTemporaries: %v, want gone", p, err)
		}
	}
	if n < int64(len(temps)*len("partial")) {
		t.Errorf("RemoveTemporaries = %d bytes, want at least %d", n, len(temps)*len("partial"))
	}
	if b, err := s.StateJSON("1"); err != nil || string(b) != "{}" {
		t.Errorf("state of 1 after RemoveTemporaries = %q, %v", b, err)
	}
}

// installStarter is the Keeper of TestRemoveReplaceableRace: when asked,
// it answers "not in use", then starts an install of rev the way the
// updater does (publish the revision as in flight, then read its state)
// and reports what that read found.
type installStarter struct {
	s    *Storage
	rev  string
	read chan error
}

func (k *installStarter) Keep() GCKeep {
	go func() {
		_, err := k.s.StateJSON(k.rev)
		k.read <- err
	}()
	return GCKeep{}
}

// TestRemoveReplaceableRace: the signature-failure cleanup of PUT /steps
// checks and removes in one critical section, so an install of the same
// revision that starts right after the check either finds nothing or
// keeps a complete trail; it never reads a state whose trail is then
// deleted under it (issue 11 review, finding 7: CheckReplaceable then
// RemoveRevision left that gap).
func TestRemoveReplaceableRace(t *testing.T) {
	s := newStorage(t)
	for i := range 200 {
		if err := s.WriteStateJSON("locals/x", strings.NewReader("signed badly")); err != nil {
			t.Fatal(err)
		}
		k := &installStarter{s: s, rev: "locals/x", read: make(chan error, 1)}
		if err := s.RemoveReplaceable("locals/x", k); err != nil {
			t.Fatalf("RemoveReplaceable = %v", err)
		}
		if err := <-k.read; err == nil {
			t.Fatalf("round %d: the install read the state of a revision removed under it", i)
		}
	}
}

// TestRemoveReplaceable: a revision in use (the rules of ReplaceState)
// is kept whole; one only uploaded is removed with its logs.
func TestRemoveReplaceable(t *testing.T) {
	s := newStorage(t)
	for _, rev := range []string{"0", "locals/run", "locals/try", "locals/done", "locals/cur", "locals/old", "locals/new"} {
		if err := s.WriteStateJSON(rev, strings.NewReader("old")); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(s.LogDir, rev), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetCurrent("locals/cur"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDone("locals/old"); err != nil {
		t.Fatal(err)
	}
	keep := GCKeep{Running: "locals/run", Update: "locals/try", Done: "locals/done"}
	for _, rev := range []string{"0", "locals/run", "locals/try", "locals/done", "locals/cur", "locals/old"} {
		if err := s.RemoveReplaceable(rev, keep); !errors.Is(err, ErrInUse) {
			t.Errorf("RemoveReplaceable(%s) = %v, want ErrInUse", rev, err)
		}
		if b, _ := s.StateJSON(rev); string(b) != "old" {
			t.Errorf("%s: state after a refused removal = %q, want old", rev, b)
		}
	}
	if err := s.RemoveReplaceable("locals/new", keep); err != nil {
		t.Errorf("RemoveReplaceable(locals/new) = %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.LogDir, "locals/new")); s.HasRevision("locals/new") || err == nil {
		t.Error("locals/new or its logs kept")
	}
	if err := s.RemoveReplaceable("locals/absent", keep); err != nil {
		t.Errorf("RemoveReplaceable(locals/absent) = %v, want nil", err)
	}
}
