package storage

import (
	"bytes"
	"errors"
	"testing"
)

// A download cut halfway resumes from its partial file; the bytes still
// to come are promised in the ledger while it is open; Install makes it
// the object and a wrong content is refused and removed.
func TestPartialResumeLedgerInstall(t *testing.T) {
	s := newStorage(t)
	data := bytes.Repeat([]byte("object "), 10000)
	sha := shaOf(data)
	size := int64(len(data))
	p, err := s.OpenPartial(sha, size)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Promised(); got != size {
		t.Errorf("promised %d at the start, want %d", got, size)
	}
	half := size / 2
	if _, err := p.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	if got := s.Promised(); got != size-half {
		t.Errorf("promised %d halfway, want %d", got, size-half)
	}
	p.Close() // the cut
	if got := s.Promised(); got != 0 {
		t.Errorf("promised %d after Close, want 0", got)
	}
	if got := s.PartialSize(sha); got != half {
		t.Fatalf("PartialSize = %d, want %d", got, half)
	}
	p, err = s.OpenPartial(sha, size)
	if err != nil {
		t.Fatal(err)
	}
	if p.Size() != half || s.Promised() != size-half {
		t.Errorf("resumed at %d with %d promised, want %d and %d", p.Size(), s.Promised(), half, size-half)
	}
	if _, err := p.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	if err := p.Install(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := s.VerifyObject(sha); err != nil {
		t.Errorf("object after Install: %v", err)
	}
	if s.PartialSize(sha) != 0 || s.Promised() != 0 {
		t.Errorf("partial %d, promised %d after Install", s.PartialSize(sha), s.Promised())
	}

	other := shaOf([]byte("other"))
	p, err = s.OpenPartial(other, 5)
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("wrong"))
	if err := p.Install(); !errors.Is(err, ErrBadChecksum) {
		t.Errorf("Install(wrong content) = %v, want ErrBadChecksum", err)
	}
	p.Close()
	if s.PartialSize(other) != 0 || s.HasObject(other) {
		t.Error("a bad download was kept")
	}
	if err := s.RemovePartials(); err != nil {
		t.Fatal(err)
	}
}

// A download larger than the free space fails at once with ErrNoSpace.
func TestPartialNoSpace(t *testing.T) {
	s := newStorage(t)
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenPartial(shaOf([]byte("x")), int64(u.RealFree)+1<<30); !errors.Is(err, ErrNoSpace) {
		t.Errorf("OpenPartial(too big) = %v, want ErrNoSpace", err)
	}
}
