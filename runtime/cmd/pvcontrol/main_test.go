package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/pantavisor"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

const emptyState = `{"#spec":"pantavisor-service-system@1"}`

type daemon struct {
	sock string
	done chan pantavisor.Exit
}

// startDaemon runs pantavisor in-process in appengine mode on a fresh
// storage holding an empty revision 0.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	storage := t.TempDir()
	if err := os.MkdirAll(filepath.Join(storage, "trails", "0", ".pvr"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(storage, "trails", "0", ".pvr", "json"), []byte(emptyState), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	d, err := pantavisor.New(pantavisor.Options{
		Cmdline:   "pv_rev=0 pv_appengine",
		Env:       []string{"PV_STORAGE_MNTPOINT=" + storage, "PV_SYSTEM_RUNDIR=" + run},
		BuildInfo: "pvcontrol test build\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dm := &daemon{sock: filepath.Join(run, "pv-ctrl"), done: make(chan pantavisor.Exit, 1)}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		e, err := d.Run(ctx)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		dm.done <- e
	}()
	// Registered after t.TempDir, so it runs first: the daemon is gone
	// before its directories are removed.
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	select {
	case <-d.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("daemon not ready")
	}
	return dm
}

// pvc runs pvcontrol in-process and returns stdout and the exit status.
func pvc(t *testing.T, sock string, stdin string, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"-s", sock}, args...), strings.NewReader(stdin), &out, &errb)
	code := 0
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) {
			t.Fatalf("pvcontrol %q: %v (not an exit status)", args, err)
		}
		code = ee.code
	}
	return out.String(), code
}

func TestCommands(t *testing.T) {
	d := startDaemon(t)
	dir := t.TempDir()
	obj := filepath.Join(dir, "obj")
	os.WriteFile(obj, []byte("object data"), 0o644)
	sum := sha256.Sum256([]byte("object data"))
	sha := hex.EncodeToString(sum[:])
	state := filepath.Join(dir, "state.json")
	os.WriteFile(state, []byte(emptyState), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"#spec":"other@1"}`), 0o644)

	tests := []struct {
		args  []string
		stdin string
		code  int
		want  string
	}{
		{[]string{"buildinfo"}, "", 0, "pvcontrol test build"},
		{[]string{"conf", "ls"}, "", 0, `"key":"PV_SYSTEM_INIT_MODE"`},
		{[]string{"devmeta", "ls"}, "", 0, `"pantavisor.revision":"0"`},
		{[]string{"devmeta", "save", "k1", "v1"}, "", 0, ""},
		{[]string{"devmeta", "ls"}, "", 0, `"k1":"v1"`},
		{[]string{"devmeta", "delete", "k1"}, "", 0, ""},
		{[]string{"devmeta", "delete", "k1"}, "", 255, ""},
		{[]string{"usrmeta", "save", "a.b", `{"j":[1,2]}`}, "", 0, ""},
		{[]string{"usrmeta", "ls"}, "", 0, `{"a.b":{"j":[1,2]}}`},
		{[]string{"usrmeta", "save", "a/b", "v"}, "", 255, ""},
		{[]string{"usrmeta", "save", "..", "v"}, "", 255, ""},
		{[]string{"usrmeta", "delete", "a.b"}, "", 0, ""},
		{[]string{"objects", "put", obj}, "", 0, sha},
		{[]string{"objects", "ls"}, "", 0, `"sha256":"` + sha + `","size":"11"`},
		{[]string{"objects", "get", sha}, "", 0, "object data"},
		{[]string{"objects", "put", obj, strings.Repeat("f", 64)}, "", 60, ""},
		{[]string{"steps", "put", state, "dev"}, "", 0, ""},
		{[]string{"-m", "first try", "steps", "put", "-", "locals/two"}, emptyState, 0, ""},
		{[]string{"steps", "put", bad, "locals/bad"}, "", 70, ""},
		{[]string{"steps", "ls"}, "", 0, `"commitmsg":"first try"`},
		{[]string{"steps", "get", "locals/dev"}, "", 0, emptyState},
		{[]string{"steps", "get", "current"}, "", 0, emptyState},
		{[]string{"steps", "progress", "0"}, "", 0, `"status":"DONE"`},
		{[]string{"steps", "progress", "locals/dev"}, "", 0, `"status":"NEW"`},
		{[]string{"steps", "commitmsg", "locals/dev", "hello"}, "", 0, ""},
		{[]string{"daemons", "ls"}, "", 0, "[]"},
		{[]string{"daemons", "get", "x"}, "", 255, ""},
		{[]string{"ls"}, "", 255, ""}, // containers: issue 4
		{[]string{"containers", "ls"}, "", 255, ""},
		{[]string{"containers", "stop", "x"}, "", 255, ""},
		{[]string{"groups", "ls"}, "", 255, ""},
		{[]string{"graph", "ls"}, "", 255, ""},
		{[]string{"signal", "ready"}, "", 255, ""},
		{[]string{"cmd", "run-gc"}, "", 0, ""},
		{[]string{"cmd", "enable-ssh"}, "", 0, ""},
		{[]string{"commands", "go-remote"}, "", 0, ""},
		{[]string{"cmd", "run", "locals/dev"}, "", 255, ""}, // no updater yet: 501
		{[]string{"cmd", "make-factory"}, "", 255, ""},
		{[]string{"cmd", "nope"}, "", 1, ""},
		{[]string{"cmd", "run"}, "", 1, ""},
		{[]string{"cmd", "run-gc", "extra"}, "", 1, ""},
		{[]string{"nope"}, "", 1, ""},
		{[]string{}, "", 1, ""},
		{[]string{"steps"}, "", 1, ""},
	}
	for _, tt := range tests {
		out, code := pvc(t, d.sock, tt.stdin, tt.args...)
		if code != tt.code {
			t.Errorf("pvcontrol %q exit = %d (out %q), want %d", tt.args, code, out, tt.code)
			continue
		}
		if !strings.Contains(out, tt.want) {
			t.Errorf("pvcontrol %q = %q, want it to contain %q", tt.args, out, tt.want)
		}
		time.Sleep(5 * time.Millisecond) // let the FSM take queued commands
	}
}

func TestRebootPoweroff(t *testing.T) {
	for _, tt := range []struct {
		word string
		want pantavisor.Exit
	}{{"reboot", pantavisor.ExitReboot}, {"poweroff", pantavisor.ExitPoweroff}} {
		t.Run(tt.word, func(t *testing.T) {
			d := startDaemon(t)
			if _, code := pvc(t, d.sock, "", "cmd", tt.word, "bye"); code != 0 {
				t.Fatalf("pvcontrol cmd %s exit = %d, want 0", tt.word, code)
			}
			select {
			case got := <-d.done:
				if got != tt.want {
					t.Errorf("daemon exit after cmd %s = %d, want %d", tt.word, got, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("daemon did not exit")
			}
		})
	}
}

func TestSocketEnv(t *testing.T) {
	d := startDaemon(t)
	t.Setenv("PVCONTROL_SOCKET", d.sock)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"buildinfo"}, nil, &out, &out); err != nil {
		t.Fatalf("pvcontrol buildinfo with PVCONTROL_SOCKET: %v", err)
	}
	if !strings.Contains(out.String(), "pvcontrol test build") {
		t.Errorf("pvcontrol buildinfo = %q", out.String())
	}
}

func TestOutputFile(t *testing.T) {
	d := startDaemon(t)
	out := filepath.Join(t.TempDir(), "steps.json")
	if stdout, code := pvc(t, d.sock, "", "-f", out, "steps", "get", "0"); code != 0 || stdout != "" {
		t.Fatalf("pvcontrol -f steps get 0 = %q, exit %d, want nothing on stdout, 0", stdout, code)
	}
	b, err := os.ReadFile(out)
	if err != nil || strings.TrimSpace(string(b)) != emptyState {
		t.Errorf("-f file = %q, %v, want %s", b, err, emptyState)
	}
}

func TestStepsInstall(t *testing.T) {
	d := startDaemon(t)
	obj := []byte("payload of an object")
	sum := sha256.Sum256(obj)
	sha := hex.EncodeToString(sum[:])
	state := `{"#spec":"pantavisor-service-system@1","notes.txt":"` + sha + `"}`

	dir := t.TempDir()
	// An export tarball (gzip): json first, then objects/<sha>.
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range []struct {
		name string
		data []byte
	}{{"json", []byte(state)}, {"objects/" + sha, obj}} {
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg})
		tw.Write(m.data)
	}
	tw.Close()
	gz.Close()
	tgz := filepath.Join(dir, "export.tgz")
	os.WriteFile(tgz, buf.Bytes(), 0o644)
	// The same as a checkout's .pvr directory.
	pvr := filepath.Join(dir, "checkout", ".pvr")
	os.MkdirAll(filepath.Join(pvr, "objects"), 0o755)
	os.WriteFile(filepath.Join(pvr, "json"), []byte(state), 0o644)
	os.WriteFile(filepath.Join(pvr, "objects", sha), obj, 0o644)

	for _, tt := range []struct{ src, rev string }{{tgz, "fromtar"}, {filepath.Join(dir, "checkout"), "fromdir"}} {
		if out, code := pvc(t, d.sock, "", "-m", "installed "+tt.rev, "steps", "install", tt.src, tt.rev); code != 0 {
			t.Fatalf("steps install %s = exit %d (%s)", tt.src, code, out)
		}
		if out, _ := pvc(t, d.sock, "", "steps", "get", "locals/"+tt.rev); strings.TrimSpace(out) != state {
			t.Errorf("steps get locals/%s = %s, want %s", tt.rev, out, state)
		}
		if out, _ := pvc(t, d.sock, "", "steps", "ls"); !strings.Contains(out, `"commitmsg":"installed `+tt.rev+`"`) {
			t.Errorf("steps ls = %s, want the commit message of %s", out, tt.rev)
		}
	}
	if out, _ := pvc(t, d.sock, "", "objects", "ls"); !strings.Contains(out, sha) {
		t.Errorf("objects ls = %s, want %s", out, sha)
	}
	// A tarball whose object does not match its name fails with 60.
	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "objects/" + strings.Repeat("a", 64), Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("bad"))
	tw.Close()
	bad := filepath.Join(dir, "bad.tar")
	os.WriteFile(bad, buf.Bytes(), 0o644)
	if _, code := pvc(t, d.sock, "", "steps", "install", bad, "bad"); code != 60 {
		t.Errorf("steps install with a corrupt object = exit %d, want 60", code)
	}
}

// TestOutputFileFull checks that a failed write of the answer is an error:
// /dev/full refuses every write with ENOSPC.
func TestOutputFileFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		testenv.Skipf(t, "no /dev/full")
	}
	d := startDaemon(t)
	if _, code := pvc(t, d.sock, "", "-f", "/dev/full", "steps", "get", "0"); code != exitUnknown {
		t.Errorf("pvcontrol -f /dev/full steps get 0: exit %d, want %d", code, exitUnknown)
	}
}

// TestCommandHelp checks "pvcontrol <command> -h" prints the usage and
// sends nothing (the socket does not exist).
func TestCommandHelp(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none")
	for _, cmd := range []string{"ls", "steps", "objects", "usrmeta"} {
		out, code := pvc(t, sock, "", cmd, "-h")
		if code != 0 || !strings.HasPrefix(out, "usage: pvcontrol") {
			t.Errorf("pvcontrol %s -h = %q, exit %d, want the usage, 0", cmd, out, code)
		}
	}
}
