// Package update drives revision updates on the device (spec §4): it
// installs a local revision (LOCAL_RUN, LOCAL_RUN_COMMIT, TRY_ONCE,
// MAKE_FACTORY), decides between a reboot and a non-reboot transition,
// follows the new revision through INPROGRESS and TESTING to DONE or
// UPDATED, commits it in the boot loader, resumes an update after a
// reboot, rolls back failures, and applies the storage GC policy (spec
// §12) on top of storage.GC.
//
// # Life of an update
//
//	LOCAL_RUN rev ─ read .pvr/json ── missing ──────────► WONTGO State JSON not found
//	              ├ parse ────────── bad ──────────────► WONTGO State JSON has bad format
//	              ├ sha256 of every object ─ bad ──────► ERROR  Object validation went wrong
//	              ├ storage.Materialize (trail + .pv boot links)
//	              ├ bootloader.Install (hooks, pv_try=rev)
//	              └ state.Diff(current, rev)
//	                   reboot ───► INPROGRESS Rebooting ─ Run returns Reboot
//	                   no reboot ► INPROGRESS Transitioning… ─ Containers.Stop/Transition
//	                               ─► INPROGRESS Trying new revision
//	(after the reboot, Resume on the try boot) ─► INPROGRESS Trying new revision
//	INPROGRESS ── every group goal reached ─► TESTING (commit delay starts)
//	           └─ a goal timed out ─────────► ERROR Status goal not reached ─ Rollback
//	TESTING ── commit delay over, all stable_timeout containers stable ─►
//	              try boot:  bootloader.PreCommit, DONE, .pv/done, PostCommit (system-boot-done)
//	              otherwise: UPDATED (pv_try stays: the next boot try-boots and commits it)
//	        └─ waiting for stable containers ─► TESTING Waiting for all containers to become stable
//	INPROGRESS/TESTING ── container crash / recovery exhausted ─► ERROR A container could not be started ─ Rollback
//
// A change owned by no platform (bsp, device.json, groups.json, _sigs,
// any root key), or by a platform whose effective restart_policy in
// either revision is not "container", makes the transition a reboot.
//
// # Power loss
//
// Every step is ordered so that a reboot at any point ends in the old or
// the new revision fully: nothing is armed before the trail is complete,
// pv_try is the last install step, the commit clears pv_try in the same
// boot loader write sequence that sets pv_rev before DONE is written,
// and Resume completes a commit that was cut short (pv_rev already the
// new revision, progress not yet DONE). GC never deletes the running,
// updated, tried or committed revision.
//
// # Deviations from upstream (⚠ in the spec)
//
//   - TRY_ONCE is implemented as documented: the revision is installed and
//     run once; pv_try is cleared as soon as it runs, so any later reboot
//     goes back to the committed revision, and it is never committed (it
//     ends UPDATED at best). A marker .pv/try-once in its trail carries
//     the mode across the reboot.
//   - A failed non-reboot transition clears pv_try at once (as upstream's
//     REBOOT-time finish does), so the rollback reboot boots pv_rev
//     without first re-trying the failed revision.
//   - PV_REVISION_RETRIES also bounds try boots: a try boot that finds
//     its revision already INPROGRESS "Trying new revision" or TESTING
//     (the previous try boot died without falling back, as with a
//     volatile pv_trying latch) counts a retry; past the limit the update
//     is WONTGO "Max update processing retries reached" and rolls back.
//   - MAKE_FACTORY builds the new revision 0 aside and swaps it in
//     atomically (upstream deletes 0 first), after verifying the source's
//     objects; it refuses while 0 runs, is committed (pv_rev) or tried,
//     while any pv_try is armed (reboot to commit first) and during an
//     update, so the boot loader never finds 0 missing or half-built.
//   - LOCAL_APPLY (ours; upstream accepts it and does nothing) runs a
//     revision like LOCAL_RUN when it needs no reboot and refuses it
//     (WONTGO, ErrNeedsReboot) before arming anything when it does.
//   - Options.Verify checks the signatures (spec §9) of every revision
//     run, again: its state may have changed on storage since the upload
//     was checked.
//
// # Wiring (runtime/pantavisor)
//
// This package does not import runtime/pantavisor (which imports it); the
// daemon adapts:
//
//	u, err := update.New(update.Options{
//		Storage: store, Bootloader: bl, Containers: containersAdapter{…},
//		Logs: logServer, // *logserver.Server has StartUpdate/StopUpdate
//		Clock: clock, Log: log,
//		CommitDelay:     conf.Duration(config.UpdaterCommitDelay),
//		GoalsTimeout:    conf.Duration(config.UpdaterGoalsTimeout),
//		RevisionRetries: conf.Int(config.RevisionRetries),
//		GC: update.GCPolicy{KeepFactory: conf.Bool(config.StorageGCKeepFactory),
//			Threshold: conf.Int(config.StorageGCThreshold),
//			DeferTime: conf.Duration(config.StorageGCThresholdDeferTime)},
//	})
//
// Commands and Next come from runtime/command, which the daemon shares, so
// *Updater satisfies pantavisor.Updater as is (runtime/pantavisor/updater
// only adds the wiring).
//
// Where the daemon calls it:
//
//   - RUN after a boot: Resume(bl.Rev(), bl.Try()) before loading the
//     platforms; an error wrapping ErrRollback means ROLLBACK. Resume also
//     does the factory auto-DONE of revision 0 (the daemon's own factory
//     step must not run when an Updater is set).
//   - WAIT: Step(ctx) every tick, after the platforms' step.
//   - When the platforms' step fails while Updating(), call
//     ContainerFailed(err) (it writes ERROR "A container could not be
//     started" and clears pv_try after a non-reboot transition) and go to
//     ROLLBACK.
//   - COMMAND: Run(ctx, cmd) for LOCAL_RUN, LOCAL_RUN_COMMIT, TRY_ONCE,
//     MAKE_FACTORY, LOCAL_APPLY and GO_REMOTE (refused during an update).
//   - Every GC (RUN_GC, POST /storage/gc): GC(), whose Keep knows the
//     committed pv_rev, the armed pv_try and the update in flight; the
//     threshold GC runs inside Step. There is no other keep rule.
//   - PUT /steps: Keep() names the revisions that may not be replaced
//     (storage.ReplaceState asks it under the storage lock).
//   - PUT /objects: ObjectsUploaded() (defers the GC threshold).
//   - Keep, GC, ObjectsUploaded, Updating, Progress and Running may be
//     called from the HTTP handlers' goroutines.
//   - After Run returns Stay for a non-reboot transition, Running() is the
//     new running revision (the daemon's rev and logs/current link;
//     trails/current is already moved).
//   - Hooks: the boot loader is opened before the updater exists, so its
//     Hooks is hook.Runner.Hooks(func() hook.Env { return u.HookEnv() })
//     with u assigned once New returns (hook.Env{} before that).
//
// The Containers adapter over the platform engine: Stop stops the named
// platforms leniently then by force and waits; Transition loads the new
// revision's platforms for the named ones (and starts them) while the
// others keep running, and makes rev the daemon's running revision;
// Goals is Engine.GoalsReached; Failed returns the failure the engine
// reported since SetUpdating(true) (crash, recovery exhausted); Stable is
// Engine.Stable; SetUpdating is Engine.SetUpdating and must be remembered
// for an engine created later (Resume runs before Platforms.Load).
package update
