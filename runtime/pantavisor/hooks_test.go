package pantavisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeHook installs an executable system hook below libdir.
func writeHook(t *testing.T, libdir, name, script string) {
	t.Helper()
	dir := filepath.Join(libdir, HooksDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestSystemHooksStartDone: system-start runs in INIT and system-done once
// the revision is READY, each with the documented environment.
func TestSystemHooksStartDone(t *testing.T) {
	storage := newStorage(t)
	lib := t.TempDir()
	out := filepath.Join(t.TempDir(), "ran")
	writeHook(t, lib, "10-record", `echo "$PV_OP rev=$PV_REV try=$PV_TRY tryboot=$PV_TRYBOOT status=$PV_STATUS obj=$PV_OBJ_STORAGE trails=$PV_TRAILS_STORAGE" >>`+out+"\n")
	in := start(t, storage, func(o *Options) { o.Env = append(o.Env, "PV_SYSTEM_LIBDIR="+lib) })
	want := "system-start rev=0 try= tryboot=0 status=%s obj=" + storage + "/objects trails=" + storage + "/trails\n" +
		"system-done rev=0 try= tryboot=0 status=DONE obj=" + storage + "/objects trails=" + storage + "/trails\n"
	deadline := time.Now().Add(10 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(out)
		if got = string(b); strings.Count(got, "\n") >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The factory revision gets its DONE progress in RUN, after INIT.
	for _, st := range []string{"", "DONE"} {
		if got == strings.Replace(want, "%s", st, 1) {
			in.stop()
			return
		}
	}
	t.Errorf("hooks ran:\n%s\nwant\n%s", got, want)
}

// TestSystemStartFails: a failing system-start hook fails INIT with its
// output, as upstream's init table.
func TestSystemStartFails(t *testing.T) {
	storage := newStorage(t)
	lib := t.TempDir()
	writeHook(t, lib, "50-fail", "echo no network >&2\nexit 3\n")
	d, err := New(Options{Cmdline: "pv_appengine pv_rev=0", NoLogServer: true,
		Env: []string{"PV_STORAGE_MNTPOINT=" + storage, "PV_SYSTEM_RUNDIR=" + filepath.Join(t.TempDir(), "run"),
			"PV_SYSTEM_LIBDIR=" + lib, "PV_CONTROL_REMOTE=0"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	exit, err := d.Run(ctx)
	if exit != ExitPoweroff || err == nil || !strings.Contains(err.Error(), "system-start 50-fail") || !strings.Contains(err.Error(), "no network") {
		t.Errorf("Run = %d, %v, want poweroff and the system-start failure", exit, err)
	}
}
