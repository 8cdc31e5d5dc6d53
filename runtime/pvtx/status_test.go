package pvtx

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStatusRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []status{
		{},
		{State: StateActive, Local: true, Objdir: "/tmp/objects"},
		{State: StateSet, Local: true, Objdir: "/o", Queue: "/q", Count: 7, Err: 1},
		{State: StateDeployed, Objdir: strings.Repeat("x", pathMax-1)},
	} {
		if err := writeStatus(dir, s); err != nil {
			t.Fatalf("writeStatus(%+v) = %v", s, err)
		}
		got, ok, err := readStatus(dir)
		if err != nil || !ok || got != s {
			t.Errorf("readStatus after writing %+v = %+v, %v, %v", s.State, got.State, ok, err)
		}
	}
	if err := writeStatus(dir, status{Objdir: strings.Repeat("x", pathMax)}); err == nil {
		t.Errorf("writeStatus with a %d-byte path = nil error", pathMax)
	}
}

// TestStatusUpstreamLayout reads the layout upstream writes without the
// queue part: int32 status, int32 is_local, char obj[4096].
func TestStatusUpstreamLayout(t *testing.T) {
	b := make([]byte, 8+4096)
	binary.LittleEndian.PutUint32(b[0:], 2)
	binary.LittleEndian.PutUint32(b[4:], 1)
	copy(b[8:], "/var/objects")
	s, err := unmarshalStatus(b)
	if err != nil || s.State != StateActive || !s.Local || s.Objdir != "/var/objects" || s.Queue != "" {
		t.Errorf("unmarshalStatus(upstream) = %+v, %v", s, err)
	}
	full, _ := status{State: StateSet, Queue: "/q", Count: 3}.marshal()
	if len(full) != 8+4096+4096+8 {
		t.Errorf("marshal() = %d bytes, want %d", len(full), 8+4096+4096+8)
	}
}

func TestStatusCorrupt(t *testing.T) {
	good, _ := status{State: StateActive}.marshal()
	mod := func(f func([]byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short":          good[:100],
		"bad state":      mod(func(b []byte) { b[0] = 9 }),
		"bad is_local":   mod(func(b []byte) { b[4] = 2 }),
		"unterminated":   mod(func(b []byte) { copy(b[8:8+pathMax], strings.Repeat("a", pathMax)) }),
		"negative count": mod(func(b []byte) { binary.LittleEndian.PutUint32(b[statusTxSize+pathMax:], 0xffffffff) }),
	} {
		if _, err := unmarshalStatus(b); !errors.Is(err, ErrBadStatus) {
			t.Errorf("unmarshalStatus(%s) = %v, want ErrBadStatus", name, err)
		}
	}
	// A corrupt file blocks commands but not abort and begin.
	e := newCLIEnv(t)
	os.MkdirAll(e.vars["PVTXDIR"], 0o755)
	os.WriteFile(filepath.Join(e.vars["PVTXDIR"], statusFile), []byte("junk"), 0o644)
	if _, msg, code := e.run(nil, "show"); code != ExitFailure || !strings.Contains(msg, "corrupt") {
		t.Errorf("show with a corrupt status = %d %s", code, msg)
	}
	e.ok(nil, "begin", "empty")
	e.ok(nil, "show")
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateError: "ERROR", StateSet: "SET", StateActive: "ACTIVE", StateAborted: "ABORTED", StateCommitted: "COMMITED", StateDeployed: "DEPLOYED", 9: "State(9)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %s, want %s", int32(s), got, want)
		}
	}
}
