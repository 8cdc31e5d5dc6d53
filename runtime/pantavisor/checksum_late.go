package pantavisor

import (
	"log/slog"
	"runtime"
	"time"
)

// lateNice is the nice value of the late check's thread: it takes the
// CPU the boot leaves idle, not the container start's (and its reads are
// in the idle I/O class, see idleThreadIO).
const lateNice = 19

// lateCheck verifies the lateObjects of the running revision beside the
// container start: first the modules images, whose mount waits for them,
// then what the boot loader loaded. A mismatch fails the revision as one
// found before RUN does (Daemon.lateFailed), and the FSM neither commits
// nor transitions while the check runs. Its goroutine writes every field;
// the others read modsErr once modsDone is closed and err once done is.
type lateCheck struct {
	mods, boot []checkedObject
	hold       func() // lateCheckHold when made

	modsDone chan struct{} // closed once the modules images are verified or one failed
	modsErr  error
	done     chan struct{} // closed once every object is verified or one failed
	err      error
}

// lateCheckHold, set by tests only, runs before the late check hashes:
// a slow storage.
var lateCheckHold func()

func newLateCheck(mods, boot []checkedObject) *lateCheck {
	return &lateCheck{mods: mods, boot: boot, hold: lateCheckHold, modsDone: make(chan struct{}), done: make(chan struct{})}
}

// run verifies the objects on a thread of its own at idle priority, by
// reading them (see verifyObjects); the thread is never unlocked, so it
// ends with the goroutine and its priority with it.
func (c *lateCheck) run(log *slog.Logger) {
	runtime.LockOSThread()
	if err := lowerThreadPriority(lateNice); err != nil {
		log.Warn("checksum: late check priority", "err", err)
	}
	if err := idleThreadIO(); err != nil {
		log.Warn("checksum: late check I/O priority", "err", err)
	}
	if c.hold != nil {
		c.hold()
	}
	start := time.Now()
	n, err := verifyObjects(c.mods, false)
	c.modsErr = err
	close(c.modsDone)
	if err == nil {
		var m int64
		m, err = verifyObjects(c.boot, false)
		n += m
	}
	c.err = err
	close(c.done)
	if err == nil {
		log.Info("checksum: boot loader and modules objects verified", "bytes", n, "took", time.Since(start).Round(time.Millisecond))
	}
}
