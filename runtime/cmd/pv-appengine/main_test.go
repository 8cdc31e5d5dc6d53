package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestEnvList(t *testing.T) {
	var e envList
	for _, v := range []string{"A=1", "B=2 C=3"} {
		if err := e.Set(v); err != nil {
			t.Fatalf("Set(%q) = %v", v, err)
		}
	}
	if want := []string{"A=1", "B=2", "C=3"}; !slices.Equal(e, want) {
		t.Errorf("-e A=1 -e 'B=2 C=3' = %q, want %q", e, want)
	}
	if err := e.Set("novalue"); err == nil {
		t.Error(`Set("novalue") = nil, want an error`)
	}
}

func TestLookupEnv(t *testing.T) {
	t.Setenv("PV_DEBUG_SSH_PUBKEY", "from-process")
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "from-process"},
		{[]string{"PV_DEBUG_SSH_PUBKEY=one", "PV_DEBUG_SSH_PUBKEY=two"}, "two"},
		{[]string{"PV_DEBUG_SSH_PUBKEY_X=no"}, "from-process"},
	} {
		if got := lookupEnv(tc.env, "PV_DEBUG_SSH_PUBKEY"); got != tc.want {
			t.Errorf("lookupEnv(%q) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestPausePrompt(t *testing.T) {
	var out bytes.Buffer
	pause := pausePrompt(strings.NewReader("\n"), &out)
	if err := pause(context.Background(), 1); err != nil {
		t.Errorf("pause with Enter = %v, want nil", err)
	}
	if !strings.Contains(out.String(), "after boot 1") {
		t.Errorf("prompt = %q", out.String())
	}
	if err := pause(context.Background(), 2); err == nil {
		t.Error("pause at EOF = nil, want an error (stop)")
	}

	// Nothing ever typed: cancelling must still return.
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- pausePrompt(pr, io.Discard)(ctx, 3) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("pause cancelled = %v, want %v", err, context.DeadlineExceeded)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pause ignored its context")
	}
}

// TestShellSurvivesCtrlC: SIGINT (Ctrl-C typed in the manual shell) must
// not kill the shell; the pv-appengine process handles it like main does.
func TestShellSurvivesCtrlC(t *testing.T) {
	dir := t.TempDir()
	sh := filepath.Join(dir, "sh")
	if err := os.WriteFile(sh, []byte("#!/bin/sh\nsleep 0.5\necho done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHELL", sh)
	_, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM) // as main
	defer stop()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- shell(strings.NewReader(""), &out, io.Discard, nil) }()
	time.Sleep(100 * time.Millisecond)
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	if err := <-done; err != nil || strings.TrimSpace(out.String()) != "done" {
		t.Errorf("shell after Ctrl-C = %v, output %q, want nil, done", err, out.String())
	}
}
