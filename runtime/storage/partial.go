package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// partialDir holds resumable object downloads (remote updates). Unlike
// the temp files of puts they survive a reboot, so a cut download goes on
// where it stopped; they go when the update ends (RemovePartials).
const partialDir = "tmp/hub-downloads"

// Partial is the resumable download of one object into
// tmp/hub-downloads/<sha>.part. While it is open, the bytes still to come
// are promised in the space ledger, so a download and concurrent uploads
// cannot together promise more than the free space; Install makes the
// complete file the object without copying it. One goroutine uses it.
type Partial struct {
	s   *Storage
	sha string
	f   *os.File
	res *reservation
	n   int64
}

func (s *Storage) partialPath(sha string) string {
	return filepath.Join(s.root, partialDir, sha+".part")
}

// PartialSize is the bytes a download of sha holds so far (0: none).
func (s *Storage) PartialSize(sha string) int64 {
	fi, err := os.Stat(s.partialPath(sha))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// OpenPartial opens (or starts) the download of object sha, of size
// bytes (< 0: unknown), and promises the bytes it still lacks; ErrNoSpace
// when they do not fit. A partial file longer than size is not a prefix
// of the object and starts over.
func (s *Storage) OpenPartial(sha string, size int64) (*Partial, error) {
	if err := checkSha(sha); err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(s.root, partialDir), 0o700); err != nil {
		return nil, fmt.Errorf("download %s: %w", sha, noSpace(err))
	}
	f, err := os.OpenFile(s.partialPath(sha), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", sha, noSpace(err))
	}
	p := &Partial{s: s, sha: sha, f: f}
	if p.n, err = f.Seek(0, io.SeekEnd); err == nil && size >= 0 && p.n > size {
		err = p.Reset()
	}
	if err == nil {
		want := int64(-1)
		if size >= 0 {
			want = size - p.n
		}
		p.res, err = s.reserve(want)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("download %s: %w", sha, err)
	}
	return p, nil
}

// Size is the bytes the partial file holds.
func (p *Partial) Size() int64 { return p.n }

// Reset empties the partial file (a server that sent the whole object
// instead of the range asked for).
func (p *Partial) Reset() error {
	if err := p.f.Truncate(0); err != nil {
		return err
	}
	_, err := p.f.Seek(0, io.SeekStart)
	p.n = 0
	return err
}

// Write appends b within the reservation (growing it past the declared
// size when the content is longer).
func (p *Partial) Write(b []byte) (int, error) {
	if err := p.s.admit(p.res, p.n, len(b)); err != nil {
		return 0, err
	}
	m, err := p.f.Write(b)
	p.res.wrote(int64(m))
	p.n += int64(m)
	if err != nil {
		return m, noSpace(err)
	}
	return m, nil
}

// Install checks the complete file against sha and makes it the object
// (fsynced, linked into objects/). A content with another sha256 is
// removed and fails with ErrBadChecksum, so the next try starts over.
func (p *Partial) Install() error {
	if err := p.f.Sync(); err != nil {
		return noSpace(err)
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, p.f); err != nil {
		return fmt.Errorf("download %s: %w", p.sha, err)
	}
	path := p.s.partialPath(p.sha)
	if got := hex.EncodeToString(h.Sum(nil)); got != p.sha {
		os.Remove(path)
		p.n = 0
		return fmt.Errorf("download %s: content hashes to %s: %w", p.sha, got, ErrBadChecksum)
	}
	if err := p.f.Chmod(0o644); err != nil {
		return err
	}
	if err := p.s.install(path, p.sha); err != nil {
		return fmt.Errorf("download %s: %w", p.sha, err)
	}
	return syncDir(p.s.objectsDir())
}

// Close releases what the reservation did not use and closes the file;
// an unfinished download stays for the next OpenPartial.
func (p *Partial) Close() error {
	p.res.release()
	return p.f.Close()
}

// RemovePartials deletes every partial download (the update they were
// for ended).
func (s *Storage) RemovePartials() error {
	return os.RemoveAll(filepath.Join(s.root, partialDir))
}
