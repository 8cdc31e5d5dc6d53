package update

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/signature"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// TestRunVerifiesSignatures: LOCAL_RUN checks the revision's signatures
// again (its state may have changed on storage since it was uploaded): a
// refused one is WONTGO with the signature message and nothing is armed.
func TestRunVerifiesSignatures(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		msg  string
	}{
		{"invalid", fmt.Errorf("%w: bad signature", signature.ErrInvalid), progress.MsgSigFailed},
		{"not covered", fmt.Errorf("%w: 1 keys not covered: app/x", signature.ErrNotCovered), progress.MsgSigNotCovered},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDevice(t, "grub")
			bl := d.openBL("pv_rev=1")
			var checked []string
			u, err := New(Options{Storage: d.st, Bootloader: bl, Containers: newScripted(), Clock: d.clock,
				Verify: func(*state.State) error {
					checked = append(checked, "x")
					return tt.err
				}})
			if err != nil {
				t.Fatal(err)
			}
			d.u = u
			if err := u.Resume(bl.Rev(), bl.Try()); err != nil {
				t.Fatal(err)
			}
			d.addRev("2", appChange())
			if _, err := run(d, command.OpLocalRun, "2"); !errors.Is(err, tt.err) {
				t.Errorf("LOCAL_RUN = %v, want the signature error", err)
			}
			if len(checked) != 1 {
				t.Errorf("Verify called %d times, want 1", len(checked))
			}
			d.wantProgress("2", progress.Wontgo, tt.msg)
			d.wantEnv("1", "")
		})
	}
}

// TestLocalApply: LOCAL_APPLY runs a revision that needs no reboot like
// LOCAL_RUN does (containers swapped, tested, UPDATED), and refuses one
// that needs a reboot (WONTGO) without arming the boot loader.
func TestLocalApply(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", bspChange())
	if next, err := run(d, command.OpLocalApply, "2"); next != Stay || !errors.Is(err, ErrNeedsReboot) {
		t.Errorf("LOCAL_APPLY of a BSP change = %v, %v, want stay and ErrNeedsReboot", next, err)
	}
	d.wantProgress("2", progress.Wontgo, progress.MsgApplyNeedsReboot)
	d.wantEnv("1", "")
	if d.u.Updating() || d.u.Running() != "1" {
		t.Errorf("after the refusal: updating %v, running %q", d.u.Updating(), d.u.Running())
	}

	d.addRev("3", appChange())
	if next, err := run(d, command.OpLocalApply, "3"); next != Stay || err != nil {
		t.Fatalf("LOCAL_APPLY of a container change = %v, %v, want stay", next, err)
	}
	if d.u.Running() != "3" {
		t.Errorf("running %q, want 3", d.u.Running())
	}
	d.step(Stay)
	d.clock.Advance(DefaultCommitDelay)
	d.step(Stay)
	d.wantProgress("3", progress.Updated, progress.MsgUpdated)
}
