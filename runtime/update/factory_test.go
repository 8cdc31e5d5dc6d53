package update

import (
	"errors"
	"os"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// factoryDevice is a device whose committed, running revision is the
// factory revision 0 (a fresh device after its first boot).
func factoryDevice(t *testing.T) *device {
	t.Helper()
	d := newDevice(t, "grub")
	d.addRev("0", with(baseState(), map[string]any{"web/root.squashfs": "old-factory"}))
	d.materialize("0")
	if err := d.openBL("").PreCommit("0"); err != nil {
		t.Fatal(err)
	}
	if err := d.boot(); err != nil || d.booted != "0" {
		t.Fatalf("boot: %v booted %q", err, d.booted)
	}
	d.wantProgress("0", progress.Done, progress.MsgFactory)
	return d
}

func (d *device) materialize(rev string) {
	d.t.Helper()
	data, err := d.st.StateJSON(rev)
	if err != nil {
		d.t.Fatal(err)
	}
	st, err := state.Parse(data)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := d.st.Materialize(rev, st); err != nil {
		d.t.Fatal(err)
	}
}

// want0 checks that revision 0 is still the complete old factory trail.
func (d *device) want0(json []byte) {
	d.t.Helper()
	if got, _ := d.st.StateJSON("0"); string(got) != string(json) {
		d.t.Errorf("trails/0/.pvr/json = %s, want the old factory state", got)
	}
	for _, f := range []string{"web/root.squashfs", "app/root.squashfs", ".pv/pv-kernel.img", ".pvr/config"} {
		if !exists(d.trailFile("0", f)) {
			d.t.Errorf("trails/0/%s missing", f)
		}
	}
	d.wantProgress("0", progress.Done, progress.MsgFactory)
}

// TestMakeFactoryRefused: MAKE_FACTORY never replaces revision 0 while
// the boot loader may boot it or a revision is pending (issue 11 review,
// finding 1: after a non-reboot LOCAL_RUN, pv_rev=0 and MAKE_FACTORY
// deleted and rebuilt the committed revision, so a power cut in that
// window left the device without the revision it boots).
func TestMakeFactoryRefused(t *testing.T) {
	t.Run("uncommitted revision", func(t *testing.T) {
		d := factoryDevice(t)
		old, _ := d.st.StateJSON("0")
		d.addRev("2", appChange())
		if next, err := run(d, command.OpLocalRun, "2"); next != Stay || err != nil {
			t.Fatalf("LOCAL_RUN = %v, %v", next, err)
		}
		d.testAndCommit()
		d.wantProgress("2", progress.Updated, progress.MsgUpdated)
		d.wantEnv("0", "2")
		if next, err := run(d, command.OpMakeFactory, ""); next != Stay || !errors.Is(err, ErrBusy) {
			t.Errorf("MAKE_FACTORY with pv_rev=0 pv_try=2 = %v, %v, want ErrBusy", next, err)
		}
		d.want0(old)
		d.wantEnv("0", "2")
		// Once 2 is committed, 0 may be replaced.
		if err := d.boot(); err != nil || d.booted != "2" {
			t.Fatalf("try boot: %v booted %q", err, d.booted)
		}
		d.testAndCommit()
		d.wantEnv("2", "")
		if next, err := run(d, command.OpMakeFactory, ""); next != Stay || err != nil {
			t.Fatalf("MAKE_FACTORY after the commit = %v, %v", next, err)
		}
		a, _ := d.st.StateJSON("0")
		b, _ := d.st.StateJSON("2")
		if string(a) != string(b) {
			t.Errorf("trails/0/.pvr/json = %s, want that of 2", a)
		}
	})
	t.Run("committed after try once", func(t *testing.T) {
		d := factoryDevice(t)
		old, _ := d.st.StateJSON("0")
		d.addRev("2", appChange())
		if next, err := run(d, command.OpTryOnce, "2"); next != Stay || err != nil {
			t.Fatalf("TRY_ONCE = %v, %v", next, err)
		}
		d.testAndCommit()
		d.wantEnv("0", "")
		if _, err := run(d, command.OpMakeFactory, "2"); !errors.Is(err, ErrBadPayload) {
			t.Errorf("MAKE_FACTORY with pv_rev=0 = %v, want ErrBadPayload", err)
		}
		d.want0(old)
	})
}

// TestMakeFactoryFailureKeeps0: a MAKE_FACTORY that fails half way
// (here: an object of the source revision is corrupt) leaves revision 0
// complete and untouched (issue 11 review, finding 1: 0 was deleted
// first, then left holding only the new .pvr/json).
func TestMakeFactoryFailureKeeps0(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("0", with(baseState(), map[string]any{"web/root.squashfs": "old-factory"}))
	d.materialize("0")
	if err := d.st.WriteProgress("0", progress.New(progress.Done, progress.MsgFactory)); err != nil {
		t.Fatal(err)
	}
	old, _ := d.st.StateJSON("0")
	d.addRev("3", with(baseState(), map[string]any{"web/root.squashfs": "web-root-3"}))
	if err := os.WriteFile(d.st.ObjectPath(sha("web-root-3")), []byte("web-root-X"), 0o644); err != nil {
		t.Fatal(err)
	}
	if next, err := run(d, command.OpMakeFactory, "3"); next != Stay || err == nil {
		t.Fatalf("MAKE_FACTORY of a corrupt revision = %v, %v, want an error", next, err)
	}
	d.want0(old)
	if d.u.Updating() {
		t.Error("an update is left in flight")
	}
	// The boot loader still finds 0 whole.
	if err := d.openBL("").PreCommit("0"); err != nil {
		t.Fatal(err)
	}
	if err := d.boot(); err != nil || d.booted != "0" {
		t.Fatalf("boot: %v booted %q", err, d.booted)
	}
	d.want0(old)
	d.wantEnv("0", "")
}
