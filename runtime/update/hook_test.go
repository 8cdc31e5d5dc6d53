package update

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/hook"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

// TestSystemHooks wires real hook executables through the boot loader the
// way the daemon does: a failing system-install-update fails the install,
// and system-boot-done sees the committed revision.
func TestSystemHooks(t *testing.T) {
	d := newDevice(t, "grub")
	hooks := t.TempDir()
	out := filepath.Join(t.TempDir(), "ran")
	script := "#!/bin/sh\necho \"$PV_OP $PV_REV $PV_TRY $PV_TRYBOOT $PV_STATUS\" >>" + out + "\n" +
		"[ \"$PV_OP\" = system-install-update ] && [ \"$PV_TRY\" = locals/bad ] && exit 1\nexit 0\n"
	if err := os.WriteFile(filepath.Join(hooks, "10-record"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := hook.New(hook.Options{Dir: hooks, BaseEnv: []string{"PATH=" + os.Getenv("PATH")}})
	var u *Updater
	open := func(cmdline string) {
		bl, err := bootloader.Open(bootloader.Options{Type: "grub", Storage: d.dir, Cmdline: cmdline,
			Hooks: r.Hooks(func() hook.Env {
				if u == nil {
					return hook.Env{}
				}
				e := u.HookEnv()
				return e
			})})
		if err != nil {
			t.Fatal(err)
		}
		u, _ = New(Options{Storage: d.st, Bootloader: bl, Containers: newScripted(), Clock: d.clock})
		d.u = u
		if err := u.Resume(bl.Rev(), bl.Try()); err != nil {
			t.Fatal(err)
		}
	}
	open("pv_rev=1")
	d.addRev("locals/bad", appChange())
	if _, err := run(d, command.OpLocalRun, "locals/bad"); !errors.Is(err, hook.ErrFailed) {
		t.Fatalf("LOCAL_RUN with a failing hook = %v, want hook.ErrFailed", err)
	}
	d.wantProgress("locals/bad", progress.Error, progress.MsgInternal)
	d.wantEnv("1", "")

	d.addRev("2", bspChange())
	if next, err := run(d, command.OpLocalRun, "2"); next != Reboot || err != nil {
		t.Fatalf("LOCAL_RUN = %v, %v", next, err)
	}
	raw, _ := bootloader.Open(bootloader.Options{Type: "grub", Storage: d.dir})
	raw.Env().Set(bootloader.VarTrying, "2")
	open("pv_rev=2 pv_try=2")
	d.testAndCommit()
	d.wantEnv("2", "")
	b, _ := os.ReadFile(out)
	want := "system-install-update 1 locals/bad 0 NEW\n" +
		"system-install-update 1 2 0 NEW\n" +
		"system-boot-done 2  1 DONE\n"
	if got := string(b); got != want {
		t.Errorf("hooks ran:\n%s\nwant\n%s", got, want)
	}
}
