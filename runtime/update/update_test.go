package update

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

var blTypes = []string{"grub", "uboot"}

func run(d *device, op command.Op, payload string) (Next, error) {
	return d.u.Run(context.Background(), command.Command{Op: op, Payload: payload})
}

// appChange is revision 2: only the app container's rootfs changed.
func appChange() map[string]any {
	return with(baseState(), map[string]any{"app/root.squashfs": "app-root-2"})
}

// bspChange is revision 2 with a new kernel.
func bspChange() map[string]any {
	return with(baseState(), map[string]any{"bsp/kernel.img": "kernel-2"})
}

func TestNonRebootUpdate(t *testing.T) {
	for _, typ := range blTypes {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			d := newDevice(t, typ)
			d.addRev("locals/dev", appChange())
			next, err := run(d, command.OpLocalRun, "locals/dev")
			if next != Stay || err != nil {
				t.Fatalf("LOCAL_RUN = %v, %v, want stay", next, err)
			}
			if !slices.Equal(d.c.stopped, []string{"app"}) || !slices.Equal(d.c.started, []string{"app"}) {
				t.Errorf("stopped %v started %v, want only app", d.c.stopped, d.c.started)
			}
			if !d.c.updating || !d.u.Updating() || d.u.Running() != "locals/dev" {
				t.Errorf("updating %v/%v running %q", d.c.updating, d.u.Updating(), d.u.Running())
			}
			d.wantProgress("locals/dev", progress.Inprogress, progress.MsgTrying)
			d.wantEnv("1", "locals/dev")
			if cur, _ := d.st.Current(); cur != "locals/dev" {
				t.Errorf("current = %q", cur)
			}
			d.step(Stay)
			d.wantProgress("locals/dev", progress.Testing, progress.MsgTestingNoReboot)
			d.clock.Advance(DefaultCommitDelay)
			d.step(Stay)
			d.wantProgress("locals/dev", progress.Updated, progress.MsgUpdated)
			d.wantEnv("1", "locals/dev")
			if d.u.Updating() || d.c.updating {
				t.Error("still updating after UPDATED")
			}
			if !slices.Equal(d.logs.calls, []string{"start locals/dev", "stop"}) {
				t.Errorf("log capture = %v", d.logs.calls)
			}
			// the next boot try-boots it and commits it
			if err := d.boot(); err != nil {
				t.Fatal(err)
			}
			if d.booted != "locals/dev" {
				t.Fatalf("booted %q, want the tried revision", d.booted)
			}
			d.wantProgress("locals/dev", progress.Inprogress, progress.MsgTrying)
			d.step(Stay)
			d.wantProgress("locals/dev", progress.Testing, progress.MsgTestingReboot)
			d.clock.Advance(DefaultCommitDelay)
			d.step(Stay)
			d.wantProgress("locals/dev", progress.Done, progress.MsgDone)
			d.wantEnv("locals/dev", "")
			if !d.st.IsDone("locals/dev") {
				t.Error("no .pv/done")
			}
			if !slices.Contains(d.hooks, "system-boot-done") || !slices.Contains(d.hooks, "system-install-update") {
				t.Errorf("hooks = %v", d.hooks)
			}
			if err := d.boot(); err != nil || d.booted != "locals/dev" || d.u.Updating() {
				t.Errorf("boot after commit: %v booted %q updating %v", err, d.booted, d.u.Updating())
			}
		})
	}
}

func TestRebootUpdate(t *testing.T) {
	for _, typ := range blTypes {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			d := newDevice(t, typ)
			d.addRev("2", bspChange())
			next, err := run(d, command.OpLocalRun, "2")
			if next != Reboot || err != nil {
				t.Fatalf("LOCAL_RUN = %v, %v, want reboot", next, err)
			}
			if len(d.c.stopped)+len(d.c.transitions) != 0 {
				t.Errorf("containers touched before the reboot: %v %v", d.c.stopped, d.c.transitions)
			}
			d.wantProgress("2", progress.Inprogress, progress.MsgRebooting)
			d.wantEnv("1", "2")
			if !exists(d.trailFile("2", ".pv/pv-kernel.img")) {
				t.Error("boot links missing from the trail")
			}
			d.step(Reboot)
			if err := d.boot(); err != nil || d.booted != "2" {
				t.Fatalf("boot: %v booted %q", err, d.booted)
			}
			d.wantProgress("2", progress.Inprogress, progress.MsgTrying)
			if p := d.progressOf("2"); p.Retries != 0 {
				t.Errorf("retries = %d after the first try boot", p.Retries)
			}
			d.testAndCommit()
			d.wantProgress("2", progress.Done, progress.MsgDone)
			d.wantEnv("2", "")
		})
	}
}

func TestLocalRunCommitForcesReboot(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", appChange())
	if next, err := run(d, command.OpLocalRunCommit, "2"); next != Reboot || err != nil {
		t.Fatalf("LOCAL_RUN_COMMIT = %v, %v", next, err)
	}
	d.wantProgress("2", progress.Inprogress, progress.MsgRebooting)
	if err := d.boot(); err != nil {
		t.Fatal(err)
	}
	d.testAndCommit()
	d.wantProgress("2", progress.Done, progress.MsgDone)
	d.wantEnv("2", "")
}

func TestStableTimeoutHoldsCommit(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", bspChange())
	run(d, command.OpLocalRun, "2")
	d.boot()
	d.c.stable = false
	d.step(Stay)
	d.clock.Advance(time.Hour)
	d.step(Stay)
	d.wantProgress("2", progress.Testing, progress.MsgWaitingStable)
	d.step(Stay)
	d.wantEnv("1", "2")
	d.c.stable = true
	d.step(Stay)
	d.wantProgress("2", progress.Done, progress.MsgDone)
}

func TestBadUpdates(t *testing.T) {
	tests := []struct {
		name   string
		rev    map[string]any
		reboot bool
		break_ func(d *device)
		status progress.Status
		msg    string
	}{
		{"crash in testing, reboot", bspChange(), true, func(d *device) {
			d.step(Stay) // TESTING
			d.c.failed = errors.New("app exited")
		}, progress.Error, progress.MsgContainerFailed},
		{"crash in testing, no reboot", appChange(), false, func(d *device) {
			d.step(Stay)
			d.c.failed = errors.New("app exited")
		}, progress.Error, progress.MsgContainerFailed},
		{"crash in progress", bspChange(), true, func(d *device) {
			d.c.reached = false
			d.c.failed = errors.New("recovery exhausted")
		}, progress.Error, progress.MsgContainerFailed},
		{"goal timeout by clock", bspChange(), true, func(d *device) {
			d.c.reached = false
			d.step(Stay)
			d.clock.Advance(DefaultGoalsTimeout)
		}, progress.Error, progress.MsgGoalNotReached},
		{"goal timed out in a group", appChange(), false, func(d *device) {
			d.c.reached = false
			d.c.timedOut = []string{"app"}
		}, progress.Error, progress.MsgGoalNotReached},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDevice(t, "grub")
			d.addRev("2", tt.rev)
			next, err := run(d, command.OpLocalRun, "2")
			if err != nil {
				t.Fatal(err)
			}
			if tt.reboot {
				if next != Reboot {
					t.Fatalf("LOCAL_RUN = %v", next)
				}
				if err := d.boot(); err != nil {
					t.Fatal(err)
				}
			}
			tt.break_(d)
			next, err = d.u.Step(context.Background())
			if next != Rollback || !errors.Is(err, ErrFailed) {
				t.Fatalf("Step = %v, %v, want rollback", next, err)
			}
			d.wantProgress("2", tt.status, tt.msg)
			if tt.reboot {
				d.wantEnv("1", "2") // the boot loader falls back
			} else {
				d.wantEnv("1", "") // cleared: the rollback boots pv_rev
			}
			if err := d.boot(); err != nil || d.booted != "1" {
				t.Fatalf("rollback boot: %v booted %q", err, d.booted)
			}
			d.wantEnv("1", "")
			d.wantProgress("2", tt.status, tt.msg)
			if d.u.Updating() {
				t.Error("updating after the rollback")
			}
		})
	}
}

func TestContainerFailedFromDaemon(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", appChange())
	run(d, command.OpLocalRun, "2")
	if got := d.u.ContainerFailed(errors.New("platform step failed")); got != Rollback {
		t.Errorf("ContainerFailed = %v, want rollback", got)
	}
	d.wantProgress("2", progress.Error, progress.MsgContainerFailed)
	if got := d.u.ContainerFailed(errors.New("again")); got != Stay {
		t.Errorf("ContainerFailed without update = %v, want stay", got)
	}
}

func TestRejectedUpdates(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(d *device)
		status progress.Status
		msg    string
	}{
		{"state JSON missing", func(d *device) {
			os.MkdirAll(d.trailFile("2", ".pv"), 0o755)
		}, progress.Wontgo, progress.MsgStateNotFound},
		{"state JSON does not parse", func(d *device) {
			d.addRev("2", baseState())
			os.WriteFile(d.trailFile("2", ".pvr/json"), []byte(`{"#spec":"pantavisor-service-system@1",`), 0o644)
		}, progress.Wontgo, progress.MsgStateBadFormat},
		{"object with a bad checksum", func(d *device) {
			d.addRev("2", appChange())
			os.WriteFile(d.st.ObjectPath(sha("app-root-2")), []byte("tampered"), 0o644)
		}, progress.Error, progress.MsgObjectValidation},
		{"missing object", func(d *device) {
			d.addRev("2", appChange())
			os.Remove(d.st.ObjectPath(sha("app-root-2")))
		}, progress.Error, progress.MsgObjectValidation},
		{"install hook fails", func(d *device) {
			d.addRev("2", appChange())
			d.hookErr["system-install-update"] = errors.New("no")
		}, progress.Error, progress.MsgInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDevice(t, "uboot")
			tt.setup(d)
			next, err := run(d, command.OpLocalRun, "2")
			if next != Stay || !errors.Is(err, ErrFailed) {
				t.Fatalf("LOCAL_RUN = %v, %v, want stay with ErrFailed", next, err)
			}
			d.wantProgress("2", tt.status, tt.msg)
			d.wantEnv("1", "")
			if d.u.Updating() || d.u.Running() != "1" || len(d.c.stopped) != 0 {
				t.Errorf("updating %v running %q stopped %v", d.u.Updating(), d.u.Running(), d.c.stopped)
			}
			if err := d.boot(); err != nil || d.booted != "1" {
				t.Errorf("boot: %v booted %q", err, d.booted)
			}
		})
	}
}

func TestRunRefusals(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", appChange())
	d.addRev("3", appChange())
	tests := []struct {
		op      command.Op
		payload string
		want    error
	}{
		{command.OpLocalRun, "", ErrBadPayload},
		{command.OpLocalRun, "../x", ErrBadPayload},
		{command.OpLocalRun, "1", ErrBadPayload}, // running
		{command.OpLocalApply, "", ErrBadPayload},
		{command.OpReboot, "", ErrUnsupported},
	}
	for _, tt := range tests {
		if _, err := run(d, tt.op, tt.payload); !errors.Is(err, tt.want) {
			t.Errorf("Run(%s %q) = %v, want %v", tt.op, tt.payload, err, tt.want)
		}
	}
	if _, err := run(d, command.OpLocalRun, "2"); err != nil {
		t.Fatal(err)
	}
	for _, op := range []command.Op{command.OpLocalRun, command.OpMakeFactory, command.OpGoRemote} {
		if _, err := run(d, op, "3"); !errors.Is(err, ErrBusy) {
			t.Errorf("Run(%s) during an update = %v, want ErrBusy", op, err)
		}
	}
	d.step(Stay)
	d.clock.Advance(DefaultCommitDelay)
	d.step(Stay) // UPDATED
	if _, err := run(d, command.OpGoRemote, ""); err != nil || !d.u.Remote() {
		t.Errorf("GO_REMOTE = %v, remote %v", err, d.u.Remote())
	}
}

func TestTryOnce(t *testing.T) {
	t.Run("no reboot", func(t *testing.T) {
		d := newDevice(t, "grub")
		d.addRev("2", appChange())
		if next, err := run(d, command.OpTryOnce, "2"); next != Stay || err != nil {
			t.Fatalf("TRY_ONCE = %v, %v", next, err)
		}
		d.wantEnv("1", "") // any reboot goes back
		d.testAndCommit()
		d.wantProgress("2", progress.Updated, progress.MsgUpdated)
		if err := d.boot(); err != nil || d.booted != "1" {
			t.Fatalf("boot: %v booted %q", err, d.booted)
		}
		d.wantEnv("1", "")
	})
	t.Run("reboot", func(t *testing.T) {
		d := newDevice(t, "uboot")
		d.addRev("2", bspChange())
		if next, err := run(d, command.OpTryOnce, "2"); next != Reboot || err != nil {
			t.Fatalf("TRY_ONCE = %v, %v", next, err)
		}
		if err := d.boot(); err != nil || d.booted != "2" {
			t.Fatalf("try boot: %v booted %q", err, d.booted)
		}
		d.wantEnv("1", "") // cleared on the try-once boot
		d.testAndCommit()
		d.wantProgress("2", progress.Updated, progress.MsgUpdated)
		d.wantEnv("1", "")
		if err := d.boot(); err != nil || d.booted != "1" {
			t.Fatalf("next boot: %v booted %q", err, d.booted)
		}
	})
	t.Run("failure", func(t *testing.T) {
		d := newDevice(t, "grub")
		d.addRev("2", appChange())
		run(d, command.OpTryOnce, "2")
		d.c.failed = errors.New("crash")
		d.step(Rollback)
		d.wantProgress("2", progress.Error, progress.MsgContainerFailed)
		if err := d.boot(); err != nil || d.booted != "1" {
			t.Fatalf("boot: %v booted %q", err, d.booted)
		}
	})
}

func TestMakeFactory(t *testing.T) {
	d := newDevice(t, "grub")
	os.MkdirAll(d.st.LogDir+"/0", 0o755)
	d.addRev("0", with(baseState(), map[string]any{"web/root.squashfs": "old-factory"}))
	if next, err := run(d, command.OpMakeFactory, ""); next != Stay || err != nil {
		t.Fatalf("MAKE_FACTORY = %v, %v", next, err)
	}
	a, _ := d.st.StateJSON("0")
	b, _ := d.st.StateJSON("1")
	if string(a) != string(b) {
		t.Errorf("trails/0/.pvr/json = %s, want that of 1", a)
	}
	if exists(d.st.LogDir + "/0") {
		t.Error("logs of the old revision 0 kept")
	}
	if len(d.c.stopped) != 0 || !slices.Equal(d.c.transitions, []string{"0"}) {
		t.Errorf("stopped %v transitions %v: want a transition without restarts", d.c.stopped, d.c.transitions)
	}
	d.testAndCommit()
	d.wantProgress("0", progress.Updated, progress.MsgUpdated)
	if err := d.boot(); err != nil || d.booted != "0" {
		t.Fatalf("boot: %v booted %q", err, d.booted)
	}
	d.wantProgress("0", progress.Done, progress.MsgFactory)
	d.wantEnv("0", "")
	if !d.st.IsDone("0") {
		t.Error("no .pv/done on 0")
	}
	// bad source: nothing deleted
	d.addRev("3", baseState())
	os.WriteFile(d.trailFile("3", ".pvr/json"), []byte("{"), 0o644)
	if _, err := run(d, command.OpMakeFactory, "3"); err == nil {
		t.Error("MAKE_FACTORY of a bad revision succeeded")
	}
	if !d.st.HasRevision("0") {
		t.Error("revision 0 deleted by a refused MAKE_FACTORY")
	}
}

func TestFactoryFirstBoot(t *testing.T) {
	d := newDevice(t, "grub")
	// a fresh device: only revision 0, no progress, empty env
	os.RemoveAll(d.dir + "/boot")
	d.addRev("0", baseState())
	os.Remove(d.trailFile("0", ".pv/progress"))
	if err := d.boot(); err != nil || d.booted != "0" {
		t.Fatalf("boot: %v booted %q", err, d.booted)
	}
	d.wantProgress("0", progress.Done, progress.MsgFactory)
	if !d.st.IsDone("0") || d.u.Updating() {
		t.Errorf("done %v updating %v", d.st.IsDone("0"), d.u.Updating())
	}
}

func TestStopFailureRollsBack(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", appChange())
	d.c.stopErr = errors.New("app did not stop")
	next, err := run(d, command.OpLocalRun, "2")
	if next != Rollback || !errors.Is(err, ErrFailed) {
		t.Fatalf("LOCAL_RUN = %v, %v, want rollback", next, err)
	}
	d.wantProgress("2", progress.Error, progress.MsgContainerFailed)
	d.wantEnv("1", "")
	if err := d.boot(); err != nil || d.booted != "1" {
		t.Errorf("boot: %v booted %q", err, d.booted)
	}
}

func TestCommitMessageUntouched(t *testing.T) {
	d := newDevice(t, "uboot")
	d.addRev("2", bspChange())
	if err := d.st.WriteCommitMsg("2", []byte("new kernel")); err != nil {
		t.Fatal(err)
	}
	run(d, command.OpLocalRun, "2")
	d.boot()
	d.testAndCommit()
	d.wantProgress("2", progress.Done, progress.MsgDone)
	if msg, err := d.st.CommitMsg("2"); msg != "new kernel" || err != nil {
		t.Errorf("CommitMsg = %q, %v", msg, err)
	}
}

// TestWaitHub: a remote update stays INPROGRESS while the Hub has not
// answered, is tested once it does, and HubFailed rolls it back.
func TestWaitHub(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", bspChange())
	run(d, command.OpLocalRun, "2")
	if err := d.boot(); err != nil {
		t.Fatal(err)
	}
	d.u.WaitHub(true)
	d.step(Stay)
	d.step(Stay)
	d.wantProgress("2", progress.Inprogress, progress.MsgTrying)
	d.u.WaitHub(false)
	d.step(Stay)
	d.wantProgress("2", progress.Testing, progress.MsgTestingReboot)
	if got := d.u.HubFailed(progress.MsgHubNotStable, errors.New("hub gone")); got != Rollback {
		t.Fatalf("HubFailed = %v, want rollback", got)
	}
	d.wantProgress("2", progress.Error, progress.MsgHubNotStable)
	d.wantEnv("1", "2") // the boot loader falls back
	if got := d.u.HubFailed(progress.MsgHubNotStable, errors.New("again")); got != Stay {
		t.Errorf("HubFailed without update = %v, want stay", got)
	}
}
