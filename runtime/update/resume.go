package update

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Resume continues after a boot (spec §4 resume table). rev is the booted
// revision, try the boot loader's pv_try. The update revision is try
// when set, else rev, and resume only goes on for revision "0" then:
//
//	trying, progress failed             → error wrapping ErrRollback (RUN → ROLLBACK)
//	not trying, progress failed         → finish: pv_try cleared (bootloader.Fail)
//	progress DONE                       → finish (commit completed on the try boot)
//	not trying, not revision 0          → ERROR "Unexpected rollback", pv_try cleared
//	revision 0                          → DONE "Factory revision" + .pv/done
//	otherwise                           → INPROGRESS "Trying new revision"
//
// Without pv_try, a booted revision that is already the boot loader's
// pv_rev but whose progress is still INPROGRESS or TESTING had its commit
// cut short by a power loss: it is completed (DONE, .pv/done).
func (u *Updater) Resume(rev, try string) error {
	u.setRunning(rev, nil)
	target, trying := rev, try != "" && rev == try
	if try != "" {
		target = try
	}
	if try == "" && rev != "0" {
		return u.completeCommit(rev)
	}
	if !u.st.HasRevision(target) {
		u.log.Warn("resume: no trail for the update revision", "rev", target)
		if trying {
			return fmt.Errorf("%w: revision %s has no trail", ErrRollback, target)
		}
		return u.finishFailed()
	}
	d := &update{rev: target, tryBoot: trying, tryOnce: u.isTryOnce(target), phase: phaseFinal}
	p, err := u.st.Progress(target)
	switch {
	case err == nil:
		d.p = p
	case errors.Is(err, fs.ErrNotExist):
	default:
		u.log.Warn("resume: unreadable progress", "rev", target, "err", err)
	}
	u.set(func() { u.upd = d })
	switch {
	case trying && d.p.Failed():
		return fmt.Errorf("%w: revision %s is %s (%s)", ErrRollback, target, d.p.Status, d.p.Msg)
	case !trying && d.p.Failed():
		return u.finishFailed()
	case d.p.Status == progress.Done:
		return u.finishDone(d, trying)
	case !trying && !(target == "0" && rev == "0"):
		u.write(d, progress.Error, progress.MsgUnexpectedRollback)
		return u.finishFailed()
	case target == "0":
		u.set(func() { d.tryBoot = trying })
		_, err := u.factory(d)
		return err
	}
	// trying boot of an update
	if d.p.Status == progress.Testing || (d.p.Status == progress.Inprogress && d.p.Msg == progress.MsgTrying) {
		u.set(func() { d.p.Retries++ })
		if d.p.Retries > u.o.RevisionRetries {
			u.write(d, progress.Wontgo, progress.MsgMaxRetries)
			return fmt.Errorf("%w: revision %s: %s", ErrRollback, target, progress.MsgMaxRetries)
		}
	}
	data, err := u.st.StateJSON(target)
	if err != nil {
		u.write(d, progress.Error, progress.MsgStateNotFound)
		return fmt.Errorf("%w: revision %s: %w", ErrRollback, target, err)
	}
	st, err := state.Parse(data)
	if err != nil {
		u.write(d, progress.Error, progress.MsgStateBadFormat)
		return fmt.Errorf("%w: revision %s: %w", ErrRollback, target, err)
	}
	u.set(func() { d.st, u.current = st, st })
	d.installed = true
	if d.tryOnce {
		// run once: any later reboot goes back to pv_rev
		if err := u.bootFail(); err != nil {
			u.log.Error("try once: clear pv_try", "err", err)
		}
	}
	if u.o.Logs != nil {
		u.o.Logs.StartUpdate(target)
	}
	u.setUpdating(true)
	d.deadline = u.goalsDeadline(d.st)
	u.set(func() { d.phase = phaseInprogress })
	return u.write(d, progress.Inprogress, progress.MsgTrying)
}

// finishFailed ends a failed update on the rolled-back boot.
func (u *Updater) finishFailed() error {
	if u.bl.Try() == "" {
		return nil
	}
	if err := u.bootFail(); err != nil {
		return fmt.Errorf("clear pv_try: %w", err)
	}
	return nil
}

// finishDone ends an update already DONE: on its try boot the commit is
// (re)done; on another boot pv_try is cleared.
func (u *Updater) finishDone(d *update, trying bool) error {
	if trying {
		_, err := u.commit(d, d.p.Msg)
		return err
	}
	if !u.st.IsDone(d.rev) {
		if err := u.st.SetDone(d.rev); err != nil {
			return err
		}
	}
	return u.finishFailed()
}

// factory auto-commits revision 0 (spec §2).
func (u *Updater) factory(d *update) (Next, error) {
	if d.tryBoot {
		return u.commit(d, progress.MsgFactory)
	}
	err := u.write(d, progress.Done, progress.MsgFactory)
	if serr := u.st.SetDone(d.rev); serr != nil && err == nil {
		err = serr
	}
	return Stay, err
}

// completeCommit finishes a commit cut short after pv_rev was set.
func (u *Updater) completeCommit(rev string) error {
	p, err := u.st.Progress(rev)
	if err != nil {
		return nil // nothing to resume
	}
	switch {
	case p.Status == progress.Done && !u.st.IsDone(rev):
		return u.st.SetDone(rev)
	case (p.Status == progress.Inprogress || p.Status == progress.Testing) && u.bl.Done() == rev:
		u.log.Warn("resume: completing an interrupted commit", "rev", rev, "status", p.Status)
		d := &update{rev: rev, p: p, phase: phaseFinal}
		u.set(func() { u.upd = d })
		err := u.write(d, progress.Done, progress.MsgDone)
		if serr := u.st.SetDone(rev); serr != nil && err == nil {
			err = serr
		}
		if perr := u.bl.PostCommit(); perr != nil {
			u.log.Warn("post commit", "rev", rev, "err", perr)
		}
		return err
	}
	return nil
}
