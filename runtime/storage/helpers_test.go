package storage

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// putContent stores content as an object and returns its sha.
func putContent(t testing.TB, s *Storage, content string) string {
	t.Helper()
	sha := shaOf([]byte(content))
	if _, err := s.PutObject(sha, bytes.NewReader([]byte(content))); err != nil {
		t.Fatalf("PutObject(%q): %v", content, err)
	}
	return sha
}

// stateOf builds a state from key → value, where string values are
// object shas and everything else is inline JSON.
func stateOf(t testing.TB, kv map[string]any) *state.State {
	t.Helper()
	m := map[string]any{"#spec": state.Spec}
	for k, v := range kv {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Parse(b)
	if err != nil {
		t.Fatalf("state.Parse(%s): %v", b, err)
	}
	return st
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func sameFile(t testing.TB, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatalf("stat %s: %v", a, err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatalf("stat %s: %v", b, err)
	}
	return os.SameFile(fa, fb)
}

// dotEntries lists the hidden (temp) entries of dir.
func dotEntries(t testing.TB, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if e.Name()[0] == '.' {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}
