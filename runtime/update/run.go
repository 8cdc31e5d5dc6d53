package update

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/signature"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// tryOnceMarker, in a trail's .pv/, marks a TRY_ONCE install.
const tryOnceMarker = "try-once"

// mode is how a revision is installed.
type mode struct {
	commit  bool // LOCAL_RUN_COMMIT: always reboot, commit on the try boot
	tryOnce bool // TRY_ONCE: never commit
	apply   bool // LOCAL_APPLY: without a reboot, or not at all
}

// Run executes one /commands operation of the updater: LOCAL_RUN,
// LOCAL_RUN_COMMIT, TRY_ONCE, MAKE_FACTORY, RUN_GC and GO_REMOTE. A
// failed update is recorded in its progress file and also returned as an
// error wrapping ErrFailed; Next tells the daemon where to go.
func (u *Updater) Run(ctx context.Context, c command.Command) (Next, error) {
	switch c.Op {
	case command.OpLocalRun, command.OpLocalRunCommit, command.OpTryOnce, command.OpLocalApply:
		rev, err := ParseRevision(c.Payload)
		if err != nil {
			return Stay, fmt.Errorf("%s: %w", c.Op, err)
		}
		return u.install(ctx, rev, mode{commit: c.Op == command.OpLocalRunCommit, tryOnce: c.Op == command.OpTryOnce,
			apply: c.Op == command.OpLocalApply})
	case command.OpMakeFactory:
		rev := c.Payload
		if rev == "" {
			rev = u.Running()
		}
		rev, err := ParseRevision(rev)
		if err != nil {
			return Stay, fmt.Errorf("%s: %w", c.Op, err)
		}
		return u.makeFactory(ctx, rev)
	case command.OpRunGC:
		n, err := u.GC()
		u.log.Info("gc", "reclaimed", n, "err", err)
		return Stay, err
	case command.OpGoRemote:
		if u.Updating() {
			return Stay, fmt.Errorf("%s: %w", c.Op, ErrBusy)
		}
		u.lock()
		u.remote = true
		u.unlock()
		return Stay, nil
	}
	return Stay, fmt.Errorf("%s: %w", c.Op, ErrUnsupported)
}

// ParseRevision validates the revision payload of a command.
func ParseRevision(payload string) (string, error) {
	if payload == "" {
		return "", fmt.Errorf("%w: missing revision", ErrBadPayload)
	}
	if err := storage.ValidRevision(payload); err != nil {
		return "", fmt.Errorf("%w: revision %q: %w", ErrBadPayload, payload, err)
	}
	return payload, nil
}

// install runs revision rev (spec §4 local flow).
func (u *Updater) install(ctx context.Context, rev string, m mode) (Next, error) {
	if u.Updating() {
		return Stay, fmt.Errorf("run %s: %w (revision %s)", rev, ErrBusy, u.upd.rev)
	}
	if rev == u.Running() {
		return Stay, fmt.Errorf("run %s: %w: it is the running revision", rev, ErrBadPayload)
	}
	d := &update{rev: rev, tryOnce: m.tryOnce}
	if p, err := u.st.Progress(rev); err == nil {
		d.p = p // NEW "Update ready to be run" from the upload; keeps retries
	}
	u.set(func() { u.upd = d })
	return u.run(ctx, d, m)
}

// run installs and runs d, published as the update in flight. A d
// without its state reads, parses and verifies trails/<rev>/.pvr/json;
// one with it (MAKE_FACTORY) has its verified trail already.
func (u *Updater) run(ctx context.Context, d *update, m mode) (Next, error) {
	rev := d.rev
	if u.o.Logs != nil {
		u.o.Logs.StartUpdate(rev)
	}
	st := d.st
	if st == nil {
		data, err := u.st.StateJSON(rev)
		if errors.Is(err, fs.ErrNotExist) {
			return u.fail(d, progress.Wontgo, progress.MsgStateNotFound, err)
		}
		if err != nil {
			return u.fail(d, progress.Wontgo, progress.MsgInternal, err)
		}
		st, err = state.Parse(data)
		if err != nil {
			return u.fail(d, progress.Wontgo, progress.MsgStateBadFormat, err)
		}
		u.set(func() { d.st = st })
		if u.o.Verify != nil {
			if err := u.o.Verify(st); err != nil {
				msg := progress.MsgSigFailed
				if errors.Is(err, signature.ErrNotCovered) {
					msg = progress.MsgSigNotCovered
				}
				return u.fail(d, progress.Wontgo, msg, err)
			}
		}
		if err := u.verifyObjects(st); err != nil {
			return u.fail(d, progress.Error, progress.MsgObjectValidation, err)
		}
	}
	if err := u.st.Materialize(rev, st); err != nil {
		if errors.Is(err, storage.ErrMissingObject) || errors.Is(err, storage.ErrBadChecksum) {
			return u.fail(d, progress.Error, progress.MsgObjectValidation, err)
		}
		return u.fail(d, progress.Error, progress.MsgInternal, err)
	}
	if err := u.markTryOnce(rev, m.tryOnce); err != nil {
		return u.fail(d, progress.Error, progress.MsgInternal, err)
	}
	plan := u.plan(st)
	if m.apply && plan.Reboot {
		// Nothing is armed yet: the running revision goes on untouched.
		return u.fail(d, progress.Wontgo, progress.MsgApplyNeedsReboot,
			fmt.Errorf("LOCAL_APPLY %s: %w: %s", rev, ErrNeedsReboot, plan.Why))
	}
	force, err := u.bootInstall(rev)
	if err != nil {
		return u.fail(d, progress.Error, progress.MsgInternal, err)
	}
	d.installed = true
	if m.commit || force || plan.Reboot {
		if m.apply {
			// The boot loader's backend insists on a reboot (asset
			// install): undo the arming and refuse.
			if err := u.bootFail(); err != nil {
				u.log.Warn("LOCAL_APPLY: disarm", "rev", rev, "err", err)
			}
			return u.fail(d, progress.Wontgo, progress.MsgApplyNeedsReboot,
				fmt.Errorf("LOCAL_APPLY %s: %w: the boot loader asks for one", rev, ErrNeedsReboot))
		}
		u.set(func() { d.phase = phaseReboot })
		u.log.Info("reboot transition", "rev", rev, "why", plan.Why)
		return Reboot, u.write(d, progress.Inprogress, progress.MsgRebooting)
	}
	if err := u.write(d, progress.Inprogress, progress.MsgTransitioning); err != nil {
		return u.fail(d, progress.Error, progress.MsgInternal, err)
	}
	if m.tryOnce {
		if err := u.bootFail(); err != nil { // run once: no reboot comes back here
			return u.fail(d, progress.Error, progress.MsgInternal, err)
		}
	}
	u.setUpdating(true)
	if err := u.c.Stop(ctx, plan.Stop); err != nil {
		return u.fail(d, progress.Error, progress.MsgContainerFailed, err)
	}
	if err := u.c.Transition(ctx, rev, st, plan.Start); err != nil {
		return u.fail(d, progress.Error, progress.MsgContainerFailed, err)
	}
	u.setRunning(rev, st)
	if err := u.st.SetCurrent(rev); err != nil {
		u.log.Warn("current link", "rev", rev, "err", err)
	}
	u.log.Info("non-reboot transition", "rev", rev, "stopped", plan.Stop, "started", plan.Start)
	d.deadline = u.goalsDeadline(st)
	u.set(func() { d.phase = phaseInprogress })
	return Stay, u.write(d, progress.Inprogress, progress.MsgTrying)
}

// verifyObjects re-hashes every object of st.
func (u *Updater) verifyObjects(st *state.State) error {
	seen := map[string]bool{}
	keys := make([]string, 0, len(st.Objects()))
	objs := st.Objects()
	for k := range objs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		sha := objs[k]
		if seen[sha] {
			continue
		}
		seen[sha] = true
		if !u.st.HasObject(sha) {
			return fmt.Errorf("%s: object %s: %w", k, sha, storage.ErrMissingObject)
		}
		if err := u.st.VerifyObject(sha); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func (u *Updater) markTryOnce(rev string, on bool) error {
	p := filepath.Join(u.st.TrailDir(rev), ".pv", tryOnceMarker)
	if !on {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, nil, 0o644)
}

func (u *Updater) isTryOnce(rev string) bool {
	_, err := os.Stat(filepath.Join(u.st.TrailDir(rev), ".pv", tryOnceMarker))
	return err == nil
}

// TransitionPlan is how the device moves to a new revision.
type TransitionPlan struct {
	Reboot bool
	Why    string   // what forces the reboot
	Stop   []string // running platforms to stop (non-reboot)
	Start  []string // new platforms to load and start (non-reboot)
}

// plan decides between a reboot and a non-reboot transition to st.
func (u *Updater) plan(st *state.State) TransitionPlan {
	if u.c == nil {
		return TransitionPlan{Reboot: true, Why: "no container control"}
	}
	cur, err := u.currentState()
	if err != nil {
		return TransitionPlan{Reboot: true, Why: "running state: " + err.Error()}
	}
	return Plan(cur, st)
}

// Plan compares the running state cur with the new state next (spec §4
// "Reboot vs non-reboot"): any changed path owned by no platform, or by a
// platform whose effective restart_policy (in either state) is not
// "container", needs a reboot. Otherwise the platforms owning changed
// paths are stopped (those of cur) and started (those of next).
func Plan(cur, next *state.State) TransitionPlan {
	var t TransitionPlan
	stop, start := map[string]bool{}, map[string]bool{}
	for _, c := range state.Diff(cur, next) {
		old, nw := cur.PlatformOwning(c.Path), next.PlatformOwning(c.Path)
		if old == nil && nw == nil {
			return TransitionPlan{Reboot: true, Why: c.Path + " belongs to no platform"}
		}
		for _, x := range []struct {
			s *state.State
			p *state.Platform
		}{{cur, old}, {next, nw}} {
			if x.p == nil {
				continue
			}
			if pol := x.s.Resolve(x.p).RestartPolicy; pol != state.RestartContainer {
				return TransitionPlan{Reboot: true, Why: fmt.Sprintf("%s belongs to %s with restart_policy %q", c.Path, x.p.Name, pol)}
			}
		}
		if old != nil {
			stop[old.Name] = true
		}
		if nw != nil {
			start[nw.Name] = true
		}
	}
	t.Stop, t.Start = sortedKeys(stop), sortedKeys(start)
	return t
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// makeFactory makes rev the factory revision 0 (spec §2): the trail,
// logs and revision disks of 0 are replaced by a fresh trail of rev's
// state, and revision 0 is run.
//
// Upstream deletes 0 first and rebuilds it; a power cut in between left
// the boot loader's committed revision missing or half-built (issue 11
// review, finding 1). Here rev's state and objects are verified first,
// the new 0 is built aside and swapped in atomically
// (storage.ReplaceRevision), and replacing 0 is refused while the boot
// loader may boot it or something else is pending: when 0 runs, is the
// committed pv_rev (the fallback) or the armed pv_try, when any pv_try is
// armed (an uncommitted revision whose fallback must stay), and during
// an update.
func (u *Updater) makeFactory(ctx context.Context, rev string) (Next, error) {
	if u.Updating() {
		return Stay, fmt.Errorf("make factory %s: %w", rev, ErrBusy)
	}
	if rev == "0" {
		u.log.Info("make factory: revision 0 is already the factory revision")
		return Stay, nil
	}
	u.lock()
	running, try, done := u.running, u.try, u.done
	u.unlock()
	switch {
	case running == "0":
		return Stay, fmt.Errorf("make factory %s: %w: revision 0 is running; run another revision first", rev, ErrBadPayload)
	case try != "":
		return Stay, fmt.Errorf("make factory %s: %w: revision %s is armed in the boot loader (pv_try) and not committed; reboot to commit it first", rev, ErrBusy, try)
	case done == "0":
		return Stay, fmt.Errorf("make factory %s: %w: revision 0 is the committed revision the device falls back to; commit another revision first", rev, ErrBadPayload)
	}
	data, err := u.st.StateJSON(rev)
	if err != nil {
		return Stay, fmt.Errorf("make factory %s: %w", rev, err)
	}
	st, err := state.Parse(data)
	if err != nil {
		return Stay, fmt.Errorf("make factory %s: %w", rev, err)
	}
	if err := u.verifyObjects(st); err != nil {
		return Stay, fmt.Errorf("make factory %s: %w", rev, err)
	}
	// Published before the swap: GC keeps 0 and rev's objects from now
	// on, and PUT /steps/0 stays refused.
	d := &update{rev: "0", st: st}
	prev := u.upd
	u.set(func() { u.upd = d })
	if err := u.st.ReplaceRevision("0", st); err != nil {
		u.set(func() { u.upd = prev })
		return Stay, fmt.Errorf("make factory %s: %w", rev, err)
	}
	return u.run(ctx, d, mode{})
}
