package metadata

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func keys(kvs []KV) string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return strings.Join(out, ",")
}

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"a", true}, {"pvr-sdk.authorized_keys", true}, {".hidden", true}, {"a b", true},
		{strings.Repeat("k", 255), true},
		{"", false}, {"/", false}, {"a/b", false}, {".", false}, {"..", false}, {"a..b", false},
		{"a\x00b", false}, {strings.Repeat("k", 256), false}, {tmpPrefix + "x", false},
	} {
		err := ValidKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("ValidKey(%.20q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadKey) {
			t.Errorf("ValidKey(%.20q) = %v, want ErrBadKey", tc.key, err)
		}
	}
}

func TestStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	s, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	s.OnChange(func(c Change) {
		if c.Deleted {
			changes = append(changes, "-"+c.Key)
		} else {
			changes = append(changes, c.Key+"="+string(c.Value))
		}
	})
	for _, kv := range []KV{{"a", []byte("1")}, {"b", []byte("2")}, {"c", []byte("3")}} {
		if err := s.Set(kv.Key, kv.Value); err != nil {
			t.Fatalf("Set(%s) = %v", kv.Key, err)
		}
	}
	if got, want := keys(s.List()), "c,b,a"; got != want {
		t.Errorf("List = %s, want %s", got, want)
	}
	// Same value: no write, no reorder, no notification.
	if err := s.Set("a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(s.List()), "c,b,a"; got != want {
		t.Errorf("after same-value Set: List = %s, want %s", got, want)
	}
	// New value: becomes newest.
	if err := s.Set("a", []byte("11")); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(s.List()), "a,c,b"; got != want {
		t.Errorf("after update: List = %s, want %s", got, want)
	}
	if v, ok := s.Get("a"); !ok || string(v) != "11" {
		t.Errorf("Get(a) = %q, %v, want 11, true", v, ok)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a")); err != nil || string(b) != "11" {
		t.Errorf("file a = %q, %v, want 11", b, err)
	}
	if err := s.Delete("b"); err != nil {
		t.Fatalf("Delete(b) = %v", err)
	}
	if err := s.Delete("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(b) twice = %v, want ErrNotFound", err)
	}
	if _, ok := s.Get("b"); ok {
		t.Errorf("Get(b) after delete: found")
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file b after delete: %v", err)
	}
	if got, want := strings.Join(changes, " "), "a=1 b=2 c=3 a=11 -b"; got != want {
		t.Errorf("changes = %q, want %q", got, want)
	}
	// Errors.
	if err := s.Set("x/y", []byte("1")); !errors.Is(err, ErrBadKey) {
		t.Errorf("Set(x/y) = %v, want ErrBadKey", err)
	}
	if err := s.Set("big", bytes.Repeat([]byte("x"), MaxValueLen+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Set(big) = %v, want ErrTooLarge", err)
	}
	if err := s.Set("max", bytes.Repeat([]byte("x"), MaxValueLen)); err != nil {
		t.Errorf("Set(max) = %v, want nil", err)
	}
	if err := s.Set("empty", nil); err != nil {
		t.Errorf("Set(empty) = %v", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

func TestReopenOrder(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i, k := range []string{"old", "mid", "new"} {
		p := filepath.Join(dir, k)
		if err := os.WriteFile(p, []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		ts := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(p, ts, ts); err != nil {
			t.Fatal(err)
		}
	}
	// Junk that must be skipped or cleaned up.
	os.WriteFile(filepath.Join(dir, tmpPrefix+"123"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "huge"), bytes.Repeat([]byte("x"), MaxValueLen+1), 0o644)
	os.Mkdir(filepath.Join(dir, "subdir"), 0o755)
	s, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(s.List()), "new,mid,old"; got != want {
		t.Errorf("List after reopen = %s, want %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, tmpPrefix+"123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover temp file not removed: %v", err)
	}
}

func TestReplace(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"keep", "drop", "change"} {
		s.Set(k, []byte("v"))
	}
	err = s.Replace([]KV{{"new", []byte("n")}, {"change", []byte("c")}, {"keep", []byte("v")}, {"bad/key", nil}})
	if !errors.Is(err, ErrBadKey) {
		t.Errorf("Replace with a bad key = %v, want ErrBadKey", err)
	}
	got := map[string]string{}
	for _, kv := range s.List() {
		got[kv.Key] = string(kv.Value)
	}
	want := map[string]string{"new": "n", "change": "c", "keep": "v"}
	if len(got) != len(want) || got["new"] != "n" || got["change"] != "c" || got["keep"] != "v" {
		t.Errorf("after Replace = %v, want %v", got, want)
	}
	if got := s.List()[0].Key; got != "new" {
		t.Errorf("newest after Replace = %s, want new", got)
	}
}

func TestMarshalJSON(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []KV{
		{"str", []byte("hello <world> & \"you\"")},
		{"num", []byte("42")},
		{"obj", []byte(" {\"a\": [1, 2]}\n")},
		{"arr", []byte("[\"x\"]")},
		{"badobj", []byte("{not json")},
		{"bin", []byte{0xff, 'a'}},
		{"empty", nil},
	} {
		if err := s.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	// MarshalJSON itself does not HTML-escape (json.Marshal would add
	// \u003c escapes on top, which is still the same JSON).
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"empty":"","bin":"\ufffda","badobj":"{not json","arr":["x"],"obj":{"a":[1,2]},"num":"42","str":"hello <world> & \"you\""}`
	if string(b) != want {
		t.Errorf("MarshalJSON() =\n%s\nwant\n%s", b, want)
	}
	if b2, err := json.Marshal(s); err != nil || !json.Valid(b2) {
		t.Errorf("json.Marshal(store) = %s, %v", b2, err)
	}
	if got := string(MarshalKVs(nil)); got != "{}" {
		t.Errorf("MarshalKVs(nil) = %s, want {}", got)
	}
}

func FuzzMetadataKey(f *testing.F) {
	for _, s := range []string{"a", "a.b", "..", "a/b", "", "x\x00", tmpPrefix, "plat.rest.more", ".", "a.", ".b", "a..."} {
		f.Add(s, []byte("v"))
	}
	dir := f.TempDir()
	run := f.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Mirror(run, "user-meta"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		err := s.Set(key, value)
		if ValidKey(key) != nil || len(value) > MaxValueLen {
			if err == nil {
				t.Fatalf("Set(%q) accepted an invalid key/value", key)
			}
			return
		}
		if err != nil {
			// The file system may still refuse a valid key; nothing must escape dir.
			return
		}
		p := filepath.Join(dir, key)
		if filepath.Dir(p) != filepath.Clean(dir) {
			t.Fatalf("key %q escapes the store: %s", key, p)
		}
		got, ok := s.Get(key)
		if !ok || !bytes.Equal(got, value) {
			t.Fatalf("Get(%q) = %q, %v, want %q", key, got, ok, value)
		}
		if plat, rest, ok := MirrorPath(key); ok {
			mp := filepath.Join(MirrorDir(run, "user-meta", plat), rest)
			if filepath.Dir(filepath.Dir(mp)) != filepath.Clean(run) {
				t.Fatalf("mirror of %q escapes run dir: %s", key, mp)
			}
		}
		if !json.Valid(MarshalKVs([]KV{{key, value}})) {
			t.Fatalf("invalid JSON for %q=%q", key, value)
		}
		if err := s.Delete(key); err != nil {
			t.Fatalf("Delete(%q) = %v", key, err)
		}
	})
}
