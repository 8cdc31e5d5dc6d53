package update

import (
	"context"
	"fmt"

	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

// Step is one WAIT tick: it moves the update through INPROGRESS and
// TESTING, commits it, or fails it, and runs the GC threshold check. It
// returns Reboot while a reboot transition is pending and Rollback once
// the update failed after something was changed.
func (u *Updater) Step(ctx context.Context) (Next, error) {
	if err := u.checkGC(); err != nil {
		u.log.Error("gc threshold", "err", err)
	}
	d := u.upd
	if d == nil {
		return Stay, nil
	}
	switch d.phase {
	case phaseReboot:
		return Reboot, nil
	case phaseInprogress:
		if err := u.failed(); err != nil {
			return u.fail(d, progress.Error, progress.MsgContainerFailed, err)
		}
		reached, timedOut := true, []string(nil)
		if u.c != nil {
			reached, timedOut = u.c.Goals()
		}
		if len(timedOut) > 0 {
			return u.fail(d, progress.Error, progress.MsgGoalNotReached, fmt.Errorf("groups %v timed out", timedOut))
		}
		if !reached {
			if !u.clock.Now().Before(d.deadline) {
				return u.fail(d, progress.Error, progress.MsgGoalNotReached, fmt.Errorf("goals not reached by %v", d.deadline))
			}
			return Stay, nil
		}
		if d.waitHub {
			return Stay, nil // a remote update is tested once the Hub answers
		}
		msg := progress.MsgTestingNoReboot
		if d.tryBoot {
			msg = progress.MsgTestingReboot
		}
		u.set(func() { d.phase = phaseTesting })
		d.commitAt = u.clock.Now().Add(u.o.CommitDelay)
		return Stay, u.write(d, progress.Testing, msg)
	case phaseTesting:
		if err := u.failed(); err != nil {
			return u.fail(d, progress.Error, progress.MsgContainerFailed, err)
		}
		if u.clock.Now().Before(d.commitAt) {
			return Stay, nil
		}
		if u.c != nil && !u.c.Stable() {
			if d.p.Msg != progress.MsgWaitingStable {
				return Stay, u.write(d, progress.Testing, progress.MsgWaitingStable)
			}
			return Stay, nil
		}
		return u.succeed(d)
	}
	return Stay, nil
}

func (u *Updater) failed() error {
	if u.c == nil {
		return nil
	}
	return u.c.Failed()
}

// ContainerFailed records that a container failed while the update was
// INPROGRESS or TESTING (the daemon calls it when its platform step fails)
// and returns Rollback; without an update in progress it returns Stay.
func (u *Updater) ContainerFailed(cause error) Next {
	d := u.upd
	if d == nil || d.phase == phaseFinal || d.phase == phaseReboot {
		return Stay
	}
	next, _ := u.fail(d, progress.Error, progress.MsgContainerFailed, cause)
	return next
}

// WaitHub holds the update under test in INPROGRESS while wait is true:
// the daemon sets it each WAIT tick for a remote update whose Hub has not
// answered since the update started (upstream tests a revision only once
// it is online, so a revision that breaks the network never commits).
func (u *Updater) WaitHub(wait bool) {
	if d := u.upd; d != nil {
		d.waitHub = wait
	}
}

// HubFailed fails the remote update under test (INPROGRESS or TESTING)
// with ERROR msg ("Hub not reachable", "Hub communication not stable")
// and returns Rollback; without such an update it returns Stay.
func (u *Updater) HubFailed(msg string, cause error) Next {
	d := u.upd
	if d == nil || (d.phase != phaseInprogress && d.phase != phaseTesting) {
		return Stay
	}
	next, _ := u.fail(d, progress.Error, msg, cause)
	return next
}

// fail ends d with a failed status. Nothing changed yet (before the
// install): Stay, the old revision keeps running. On the try boot:
// Rollback with pv_try left set, so the boot loader falls back. After a
// non-reboot transition (or TRY_ONCE): pv_try is cleared, then Rollback,
// so the reboot boots the committed revision.
func (u *Updater) fail(d *update, s progress.Status, msg string, cause error) (Next, error) {
	u.log.Error("update failed", "rev", d.rev, "status", s, "msg", msg, "cause", cause)
	err := fmt.Errorf("%w: revision %s: %s: %w", ErrFailed, d.rev, msg, cause)
	if werr := u.write(d, s, msg); werr != nil {
		err = fmt.Errorf("%w (%w)", err, werr)
	}
	u.set(func() { d.phase = phaseFinal })
	u.setUpdating(false)
	if !d.installed {
		return Stay, err
	}
	if !d.tryBoot || d.tryOnce {
		if ferr := u.bootFail(); ferr != nil {
			err = fmt.Errorf("%w (clear pv_try: %w)", err, ferr)
		}
	}
	return Rollback, err
}

// succeed ends TESTING: DONE with a commit on the try boot, UPDATED
// otherwise (non-reboot transition, or TRY_ONCE).
func (u *Updater) succeed(d *update) (Next, error) {
	u.setUpdating(false)
	if !d.tryBoot || d.tryOnce {
		u.set(func() { d.phase = phaseFinal })
		return Stay, u.write(d, progress.Updated, progress.MsgUpdated)
	}
	return u.commit(d, progress.MsgDone)
}

// commit makes d.rev the rollback point: pv_rev=rev and pv_try cleared
// first (so a power cut never leaves DONE on an uncommitted revision),
// then DONE, .pv/done and the post-commit (system-boot-done hook).
func (u *Updater) commit(d *update, msg string) (Next, error) {
	if err := u.bootCommit(d.rev); err != nil {
		return u.fail(d, progress.Error, progress.MsgInternal, err)
	}
	u.set(func() { d.phase = phaseFinal })
	err := u.write(d, progress.Done, msg)
	if serr := u.st.SetDone(d.rev); serr != nil && err == nil {
		err = fmt.Errorf("done marker of %s: %w", d.rev, serr)
	}
	if perr := u.bl.PostCommit(); perr != nil {
		u.log.Warn("post commit", "rev", d.rev, "err", perr)
	}
	return Stay, err
}
