package pantavisor

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

func TestSwitchHandler(t *testing.T) {
	var logs, base bytes.Buffer
	var closed atomic.Bool
	log := slog.New(switchHandler{slog.NewTextHandler(&logs, nil), slog.NewTextHandler(&base, nil), &closed}).With("rev", "0")
	log.Info("first")
	closed.Store(true)
	log.Info("second")
	if got := logs.String(); !strings.Contains(got, "msg=first rev=0") || strings.Contains(got, "second") {
		t.Errorf("log server got %q, want only the first record", got)
	}
	if got := base.String(); !strings.Contains(got, "msg=second rev=0") || strings.Contains(got, "first") {
		t.Errorf("base handler got %q, want only the second record", got)
	}
}
