package update

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// TestPowerLoss cuts the power at each step of an update (the in-memory
// updater is discarded and the device boots again): the device always
// ends on the old or the new revision fully, and the objects of the
// committed revision survive a GC.
func TestPowerLoss(t *testing.T) {
	tests := []struct {
		name string
		rev  map[string]any
		// cut runs the update up to the power cut.
		cut func(d *device)
		// then, after the boot: the revision running, and the outcome of
		// finishing the update normally.
		booted   string
		status   progress.Status
		msg      string
		finalRev string
	}{
		{"before pv_try is set", appChange(), func(d *device) {
			data, _ := d.st.StateJSON("2")
			s, _ := state.Parse(data)
			if err := d.st.Materialize("2", s); err != nil {
				d.t.Fatal(err)
			}
		}, "1", progress.StatusNew, progress.MsgReady, "1"},
		{"after pv_try is set, before the reboot", bspChange(), func(d *device) {
			if next, _ := run(d, command.OpLocalRun, "2"); next != Reboot {
				d.t.Fatal("no reboot")
			}
		}, "2", progress.Done, progress.MsgDone, "2"},
		{"during a non-reboot transition", appChange(), func(d *device) {
			run(d, command.OpLocalRun, "2")
		}, "2", progress.Done, progress.MsgDone, "2"},
		{"during TESTING of the try boot", bspChange(), func(d *device) {
			run(d, command.OpLocalRun, "2")
			d.boot()
			d.step(Stay)
		}, "1", progress.Error, progress.MsgUnexpectedRollback, "1"},
		{"between pv_rev and DONE of the commit", bspChange(), func(d *device) {
			run(d, command.OpLocalRun, "2")
			d.boot()
			d.step(Stay)
			if err := d.bl.PreCommit("2"); err != nil {
				d.t.Fatal(err)
			}
		}, "2", progress.Done, progress.MsgDone, "2"},
		{"right after the commit", bspChange(), func(d *device) {
			run(d, command.OpLocalRun, "2")
			d.boot()
			d.testAndCommit()
		}, "2", progress.Done, progress.MsgDone, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDevice(t, "grub")
			d.addRev("2", tt.rev)
			tt.cut(d)
			err := d.boot() // power back on
			if d.booted != tt.booted {
				t.Fatalf("booted %q (resume %v), want %q", d.booted, err, tt.booted)
			}
			if d.u.Updating() {
				d.testAndCommit()
			}
			if err := d.boot(); err != nil { // and once more: stable
				t.Fatal(err)
			}
			if d.booted != tt.finalRev || d.u.Updating() {
				t.Errorf("final boot %q updating %v, want %q", d.booted, d.u.Updating(), tt.finalRev)
			}
			d.wantProgress("2", tt.status, tt.msg)
			d.wantEnv(tt.finalRev, "")
			if _, err := d.u.GC(); err != nil {
				t.Fatal(err)
			}
			d.wantObjectsOf(tt.finalRev)
		})
	}
}

// TestResumeTable checks the rows of the spec §4 resume table one by one.
func TestResumeTable(t *testing.T) {
	tests := []struct {
		name     string
		pvRev    string // committed pv_rev
		pvTry    string // armed pv_try
		boot     string // revision the boot loader started
		progress *progress.Progress
		wantErr  error
		updating bool
		status   progress.Status
		msg      string
		wantTry  string
		wantDone bool
	}{
		{"trying and already failed", "1", "2", "2", ptr(progress.New(progress.Error, progress.MsgGoalNotReached)),
			ErrRollback, false, progress.Error, progress.MsgGoalNotReached, "2", false},
		{"failed, rolled-back boot", "1", "2", "1", ptr(progress.New(progress.Wontgo, progress.MsgStateBadFormat)),
			nil, false, progress.Wontgo, progress.MsgStateBadFormat, "", false},
		{"DONE", "1", "2", "1", ptr(progress.New(progress.Done, progress.MsgDone)),
			nil, false, progress.Done, progress.MsgDone, "", true},
		{"not trying, not 0", "1", "2", "1", ptr(progress.New(progress.Testing, progress.MsgTestingReboot)),
			nil, false, progress.Error, progress.MsgUnexpectedRollback, "", false},
		{"trying", "1", "2", "2", ptr(progress.New(progress.Inprogress, progress.MsgRebooting)),
			nil, true, progress.Inprogress, progress.MsgTrying, "2", false},
		{"trying after UPDATED", "1", "2", "2", ptr(progress.New(progress.Updated, progress.MsgUpdated)),
			nil, true, progress.Inprogress, progress.MsgTrying, "2", false},
		{"trying without progress", "1", "2", "2", nil,
			nil, true, progress.Inprogress, progress.MsgTrying, "2", false},
		{"retries exhausted", "1", "2", "2", &progress.Progress{Status: progress.Testing, Msg: progress.MsgTestingReboot, Progress: 75, Retries: DefaultRevisionRetries},
			ErrRollback, false, progress.Wontgo, progress.MsgMaxRetries, "2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDevice(t, "grub")
			d.addRev("2", bspChange())
			if tt.progress != nil {
				d.st.WriteProgress("2", *tt.progress)
			} else {
				d.st.WriteProgress("2", progress.Progress{})
				removeProgress(d, "2")
			}
			bl := d.openBL("")
			bl.PreCommit(tt.pvRev)
			bl.Env().Set(bootloader.VarTry, tt.pvTry)
			d.bl = d.openBL("pv_rev=" + tt.boot + " pv_try=" + tt.pvTry)
			u, _ := New(Options{Storage: d.st, Bootloader: d.bl, Containers: newScripted(), Clock: d.clock})
			d.u = u
			err := u.Resume(d.bl.Rev(), d.bl.Try())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Resume = %v, want %v", err, tt.wantErr)
			}
			if u.Updating() != tt.updating {
				t.Errorf("Updating = %v, want %v", u.Updating(), tt.updating)
			}
			d.wantProgress("2", tt.status, tt.msg)
			d.wantEnv(tt.pvRev, tt.wantTry)
			if d.st.IsDone("2") != tt.wantDone {
				t.Errorf("IsDone(2) = %v, want %v", d.st.IsDone("2"), tt.wantDone)
			}
		})
	}
}

func TestResumeRetriesCount(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", bspChange())
	run(d, command.OpLocalRun, "2")
	d.boot()
	// the try boot dies; a volatile latch lets the boot loader try again
	for i := 1; i <= 3; i++ {
		d.openBL("").Env().Unset(bootloader.VarTrying)
		if err := d.boot(); err != nil || d.booted != "2" {
			t.Fatalf("boot %d: %v booted %q", i, err, d.booted)
		}
		if p := d.progressOf("2"); p.Retries != i {
			t.Errorf("retries after %d interrupted try boots = %d", i, p.Retries)
		}
	}
	d.testAndCommit()
	if p := d.progressOf("2"); p.Status != progress.Done || p.Retries != 3 {
		t.Errorf("progress = %+v", p)
	}
}

func TestResumeNoUpdate(t *testing.T) {
	d := newDevice(t, "uboot")
	if err := d.boot(); err != nil || d.u.Updating() {
		t.Fatalf("plain boot: %v updating %v", err, d.u.Updating())
	}
	if next, err := d.u.Step(context.Background()); next != Stay || err != nil {
		t.Errorf("Step = %v, %v", next, err)
	}
	d.wantProgress("1", progress.Done, progress.MsgDone)
}

func ptr[T any](v T) *T { return &v }

func removeProgress(d *device, rev string) {
	d.t.Helper()
	if err := removeFile(d.trailFile(rev, ".pv/progress")); err != nil {
		d.t.Fatal(err)
	}
}

func TestResumeWithoutTrail(t *testing.T) {
	d := newDevice(t, "grub")
	bl := d.openBL("")
	bl.Env().Set(bootloader.VarTry, "7")
	d.bl = d.openBL("pv_rev=1 pv_try=7")
	u, _ := New(Options{Storage: d.st, Bootloader: d.bl})
	if err := u.Resume("1", "7"); err != nil {
		t.Fatal(err)
	}
	d.wantEnv("1", "")
	if d.st.HasRevision("7") {
		t.Error("resume created a trail for a revision that has none")
	}
	if err := u.Resume("7", "7"); !errors.Is(err, ErrRollback) {
		t.Errorf("Resume on a try boot without trail = %v, want ErrRollback", err)
	}
}

func TestProgressLogsAndHookEnv(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", appChange())
	run(d, command.OpLocalRun, "2")
	if e := d.u.HookEnv(); e.Rev != "2" || e.Try != "2" || e.TryBoot || e.Status != "INPROGRESS" ||
		e.TrailsStorage != d.st.Root()+"/trails" || e.ObjStorage != d.st.Root()+"/objects" {
		t.Errorf("HookEnv = %+v", e)
	}
	line := `{"tsec":1,"plat":"app","lvl":"ERROR","msg":"boom"}` + "\n"
	big := strings.Repeat(line, 200)
	os.WriteFile(d.trailFile("2", ".pv/logs"), []byte(big), 0o644)
	d.c.failed = errors.New("crash")
	d.step(Rollback)
	p := d.progressOf("2")
	if len(p.Logs) != MaxLogs || !strings.HasPrefix(p.Logs, line) {
		t.Errorf("progress logs: %d bytes, want the first %d of .pv/logs", len(p.Logs), MaxLogs)
	}
}
