package pvtx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Queue entries are named NNN__<name>: "<part with / as %2F>.remove" files
// and directories holding an unpacked package ("json", optionally
// "objects/<sha>").
const (
	removeSuffix = ".remove"
	entrySep     = "__"
)

// QueueNew sets up a queue directory q whose packages' objects go to obj.
// It fails with ErrActive while a transaction is open.
func (t *Tx) QueueNew(q, obj string) error {
	if q == "" || obj == "" {
		return fmt.Errorf("%w: queue and object directories", ErrMissingArg)
	}
	if s, err := t.status(); err == nil && s.active() {
		return ErrActive
	}
	qa, err := filepath.Abs(q)
	if err != nil {
		return err
	}
	oa, err := filepath.Abs(obj)
	if err != nil {
		return err
	}
	for _, d := range []string{qa, oa} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("queue new: %w", err)
		}
	}
	if err := t.wipe(); err != nil {
		return err
	}
	return writeStatus(t.o.Dir, status{State: StateSet, Local: true, Objdir: oa, Queue: qa})
}

func (t *Tx) queueStatus() (status, error) {
	s, err := t.status()
	if err != nil {
		return s, err
	}
	if !s.hasQueue() {
		return s, ErrNoQueue
	}
	return s, nil
}

// nextEntry returns the queue path of the next entry and the status with
// the count advanced.
func nextEntry(s status, name string) (string, status) {
	p := filepath.Join(s.Queue, fmt.Sprintf("%03d%s%s", s.Count, entrySep, name))
	s.Count++
	return p, s
}

// QueueRemove queues the removal of part.
func (t *Tx) QueueRemove(part string) error {
	if part == "" {
		return fmt.Errorf("%w: part", ErrMissingArg)
	}
	s, err := t.queueStatus()
	if err != nil {
		return err
	}
	p, ns := nextEntry(s, strings.ReplaceAll(part, "/", "%2F")+removeSuffix)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("queue remove: %w", err)
	}
	f.Close()
	return writeStatus(t.o.Dir, ns)
}

// QueueUnpack queues a package: its json goes to the queue entry named
// after name ("package" when empty) and its objects to the queue's object
// directory. Nothing is queued when the package is bad.
func (t *Tx) QueueUnpack(ctx context.Context, r io.Reader, name string) error {
	s, err := t.queueStatus()
	if err != nil {
		return err
	}
	if name == "" {
		name = "package"
	}
	st := t.store(s)
	doc, err := ReadPackage(ctx, r, st, t.o.Limits)
	if err != nil {
		st.rollback()
		return err
	}
	p, ns := nextEntry(s, strings.ReplaceAll(name, "/", "%2F"))
	tmp, err := os.MkdirTemp(s.Queue, ".unpack-*")
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, "json"), doc.Bytes(), 0o644)
	}
	if err == nil {
		err = st.commit()
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		st.rollback()
		if tmp != "" {
			os.RemoveAll(tmp)
		}
		return fmt.Errorf("queue unpack: %w", err)
	}
	return writeStatus(t.o.Dir, ns)
}

// QueueProcess applies the queue to a transaction. With q and obj it first
// runs QueueNew; with base it begins a transaction from base; without
// base and without an open transaction it begins from "current". The
// entries are applied in name order (removes and package merges) and the
// result saved, leaving the transaction open. Nothing is saved when an
// entry fails.
func (t *Tx) QueueProcess(ctx context.Context, base, q, obj string) error {
	if (q == "") != (obj == "") {
		return fmt.Errorf("%w: queue needs both a directory and an object directory", ErrMissingArg)
	}
	if q != "" {
		if err := t.QueueNew(q, obj); err != nil {
			return err
		}
	}
	s, err := t.status()
	if err != nil {
		return err
	}
	if base == "" && !s.active() {
		base = "current"
	}
	if base != "" {
		if err := t.Begin(ctx, base, ""); err != nil {
			return err
		}
	}
	s, err = t.activeStatus()
	if err != nil {
		return err
	}
	if !s.hasQueue() {
		return ErrNoQueue
	}
	doc, err := t.loadCurrent()
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(s.Queue)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	st := t.store(s)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := t.applyEntry(ctx, doc, st, s.Queue, e); err != nil {
			st.rollback()
			return fmt.Errorf("queue entry %s: %w", e.Name(), err)
		}
	}
	if err := st.commit(); err != nil {
		st.rollback()
		return err
	}
	return t.saveCurrent(doc)
}

func (t *Tx) applyEntry(ctx context.Context, doc *Doc, st ObjectSink, q string, e fs.DirEntry) error {
	name := e.Name()
	_, rest, ok := strings.Cut(name, entrySep)
	if !ok {
		rest = name
	}
	if !e.IsDir() {
		part, ok := strings.CutSuffix(rest, removeSuffix)
		if !ok || !e.Type().IsRegular() {
			return fmt.Errorf("%w: not a .remove file or a package directory", ErrBadPackage)
		}
		part = strings.ReplaceAll(part, "%2F", "/")
		if part == "" {
			return fmt.Errorf("%w: empty part", ErrMissingArg)
		}
		doc.Remove(part)
		return nil
	}
	dir := filepath.Join(q, name)
	f, err := os.Open(filepath.Join(dir, "json"))
	if err != nil {
		return err
	}
	pkg, err := readJSON(f, t.o.Limits.MaxJSON)
	f.Close()
	if err != nil {
		return err
	}
	objs, err := os.ReadDir(filepath.Join(dir, "objects"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, o := range objs {
		if !state.IsSha(o.Name()) {
			return fmt.Errorf("%w: objects/%s: object name is not a sha256", ErrBadPackage, o.Name())
		}
		if err := putFile(ctx, st, filepath.Join(dir, "objects", o.Name()), o.Name()); err != nil {
			return fmt.Errorf("objects/%s: %w", o.Name(), err)
		}
	}
	doc.Merge(pkg)
	return nil
}
