package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/pvtx"
)

// buildPvtx builds the command once for the exec tests.
func buildPvtx(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "pvtx")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestBinaryExitCodes(t *testing.T) {
	bin := buildPvtx(t)
	dir := t.TempDir()
	objdir := filepath.Join(dir, "objects")
	env := append(os.Environ(), "PVTXDIR="+filepath.Join(dir, "state"), "PVCONTROL_SOCKET="+filepath.Join(dir, "no-socket"))
	for _, tc := range []struct {
		args   []string
		stdin  string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"show"}, "", 11, "", "ERROR: show: no active transaction\n"},
		{[]string{"add", "-"}, "{}", 1, "", "ERROR: add: no active transaction\n"},
		{[]string{"remove", "x"}, "", 3, "", "ERROR: remove: no active transaction\n"},
		{[]string{"remove"}, "", 4, "", "ERROR: remove: missing argument: part\n"},
		{[]string{"commit"}, "", 11, "", "ERROR: commit: no active transaction\n"},
		{[]string{"deploy", filepath.Join(dir, "trail")}, "", 11, "", "ERROR: deploy: no active transaction\n"},
		{[]string{"abort"}, "", 0, "", ""},
		{[]string{"begin", "current"}, "", 255, "", "ERROR: begin: get revision current: "},
		{[]string{"begin", "empty", objdir}, "", 0, "", ""},
		{[]string{"begin", "empty"}, "", 255, "", "ERROR: begin: a transaction is already active\n"},
		{[]string{"queue", "new", filepath.Join(dir, "q"), objdir}, "", 12, "", "ERROR: queue new: a transaction is already active\n"},
		{[]string{"a", "-"}, `{"a.json":{"x":1}}`, 0, "", ""},
		{[]string{"a", "-"}, `{"a.json":`, 255, "", "ERROR: add: bad state json: "},
		{[]string{"s"}, "", 0, `{"#spec":"pantavisor-service-system@1","a.json":{"x":1}}` + "\n", ""},
		{[]string{"commit"}, "", 12, "", "ERROR: commit: the transaction is local (use deploy)\n"},
		{[]string{"deploy", filepath.Join(dir, "trail")}, "", 0, "", ""},
		{[]string{"show"}, "", 11, "", "ERROR: show: no active transaction\n"},
		{[]string{"nope"}, "", 255, "", "Usage: pvtx"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(tc.stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || stdout.String() != tc.stdout || !strings.HasPrefix(stderr.String(), tc.stderr) || (tc.stderr == "" && stderr.Len() > 0) {
			t.Errorf("pvtx %q = %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, "trail", "a.json")); err != nil || string(got) != `{"x":1}` {
		t.Errorf("deployed a.json = %q, %v", got, err)
	}
}

func TestRunInProcess(t *testing.T) {
	t.Setenv("PVTXDIR", t.TempDir())
	var stdout, stderr bytes.Buffer
	ctx := context.Background()
	if err := run(ctx, []string{"begin", "empty", t.TempDir()}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("run(begin) = %v", err)
	}
	if err := run(ctx, []string{"show"}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("run(show) = %v", err)
	}
	if got := stdout.String(); got != `{"#spec":"pantavisor-service-system@1"}`+"\n" {
		t.Errorf("show printed %q", got)
	}
	err := run(ctx, []string{"commit"}, nil, &stdout, &stderr)
	var ee *pvtx.ExitError
	if !errors.As(err, &ee) || ee.Code != pvtx.ExitLocalOrActive {
		t.Errorf("run(commit) = %v, want exit %d", err, pvtx.ExitLocalOrActive)
	}
}
