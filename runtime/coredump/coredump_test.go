package coredump

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunSaves(t *testing.T) {
	out := filepath.Join(t.TempDir(), "corepv")
	core := bytes.Repeat([]byte("\x7fELF core"), 10000)
	var log bytes.Buffer
	if err := Run([]string{"-o", out, "init", "1"}, bytes.NewReader(core), &log); err != nil {
		t.Fatalf("Run = %v (%s)", err, log.String())
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, core) {
		t.Errorf("corepv = %d bytes, %v; want the %d bytes of the core", len(got), err, len(core))
	}
	if !strings.Contains(log.String(), "core init 1 saved to "+out) {
		t.Errorf("log = %q", log.String())
	}
	// A second crash replaces the first core.
	if err := Run([]string{"-o", out}, strings.NewReader("second"), &log); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "second" {
		t.Errorf("corepv after a second crash = %q", got)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Errorf("dir holds %d files, want only corepv", len(ents))
	}
}

func TestRunSkip(t *testing.T) {
	out := filepath.Join(t.TempDir(), "corepv")
	r := strings.NewReader(strings.Repeat("x", 4096))
	var log bytes.Buffer
	if err := Run([]string{"--skip", "-o", out}, r, &log); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes of the core left unread: the kernel waits for the helper to read them", r.Len())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("--skip kept a core: %v", err)
	}
}

func TestSaveTruncates(t *testing.T) {
	out := filepath.Join(t.TempDir(), "corepv")
	r := strings.NewReader("0123456789")
	n, cut, err := Save(out, r, 4)
	if err != nil || n != 4 || !cut || r.Len() != 0 {
		t.Errorf("Save(max 4) = %d, %v, %v, %d unread; want 4, true, nil, 0", n, cut, err, r.Len())
	}
	if b, _ := os.ReadFile(out); string(b) != "0123" {
		t.Errorf("corepv = %q", b)
	}
}

func TestSaveUnwritable(t *testing.T) {
	if _, _, err := Save(filepath.Join(t.TempDir(), "missing", "corepv"), strings.NewReader("x"), -1); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
}

func TestBudget(t *testing.T) {
	if b := Budget(filepath.Join(t.TempDir(), "missing")); b != -1 {
		t.Errorf("Budget(missing) = %d, want -1", b)
	}
}
