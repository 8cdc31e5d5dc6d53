package pantavisor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
)

// metaStore is a metadata directory with one file per key (PV_CACHE_*DIR),
// newest key first. Local adapter until runtime/metadata is wired in.
type metaStore struct {
	mu    sync.Mutex
	dir   string
	order []string // newest first
	vals  map[string][]byte
	last  time.Time // newest mtime given out
}

func openMeta(dir string) (*metaStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metadata %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", dir, err)
	}
	m := &metaStore{dir: dir, vals: map[string][]byte{}}
	type kt struct {
		k string
		t int64
	}
	var keys []kt
	for _, e := range ents {
		if !e.Type().IsRegular() || ctrl.ValidMetaKey(e.Name()) != nil || strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		m.vals[e.Name()] = b
		keys = append(keys, kt{e.Name(), info.ModTime().UnixNano()})
		if info.ModTime().After(m.last) {
			m.last = info.ModTime()
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].t > keys[j].t })
	for _, k := range keys {
		m.order = append(m.order, k.k)
	}
	return m, nil
}

// Set writes key atomically (temp file + fsync + rename).
func (m *metaStore) Set(key string, value []byte) error {
	if err := ctrl.ValidMetaKey(key); err != nil {
		return fmt.Errorf("metadata: %w: %w", ctrl.ErrInvalid, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.vals[key]; ok && bytes.Equal(old, value) {
		return nil
	}
	path := filepath.Join(m.dir, key)
	if err := writeAtomic(path, value); err != nil {
		return fmt.Errorf("metadata %s: %w", key, err)
	}
	// The order survives restarts through strictly increasing mtimes (the
	// kernel's coarse file clock can give two writes the same time).
	now := time.Now()
	if !now.After(m.last) {
		now = m.last.Add(time.Microsecond)
	}
	m.last = now
	os.Chtimes(path, now, now)
	m.remove(key)
	m.order = append([]string{key}, m.order...)
	m.vals[key] = append([]byte(nil), value...)
	return nil
}

// Get returns the value of key.
func (m *metaStore) Get(key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vals[key]
	return v, ok
}

// Delete removes key.
func (m *metaStore) Delete(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.vals[key]; !ok {
		return fmt.Errorf("metadata %q: %w", key, ctrl.ErrNotFound)
	}
	if err := os.Remove(filepath.Join(m.dir, key)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("metadata %s: %w", key, err)
	}
	delete(m.vals, key)
	m.remove(key)
	return nil
}

func (m *metaStore) remove(key string) {
	for i, k := range m.order {
		if k == key {
			m.order = append(m.order[:i], m.order[i+1:]...)
			return
		}
	}
}

// MarshalJSON renders the GET shape: newest key first; values that are a
// JSON object or array are embedded, anything else is a string.
func (m *metaStore) MarshalJSON() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range m.order {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		v := m.vals[k]
		t := bytes.TrimSpace(v)
		if len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t) {
			var c bytes.Buffer
			if json.Compact(&c, t) == nil {
				b.Write(c.Bytes())
				continue
			}
		}
		vb, _ := json.Marshal(string(v))
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeAtomic writes path via a temp file, fsync and rename.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
