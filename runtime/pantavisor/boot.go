package pantavisor

import (
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/platform"
)

// bootSince is how long after /init's start phase name ended (0 when it
// did not).
func (d *Daemon) bootSince(name string) time.Duration {
	at, _ := d.boot.Since(name)
	return at
}

// sshLateAfter bounds how long the debug ssh server waits for the boot
// (see sshDue).
const sshLateAfter = 20 * time.Second

// sshDue reports whether the debug ssh server may be started: once the
// revision is READY, or sshLateAfter after /init when it never gets
// there. Its first start makes the host key, and on a machine without a
// hardware RNG the kernel's random pool may take seconds to be ready:
// the FSM would wait for it before the containers start.
func (d *Daemon) sshDue() bool {
	return d.bootShown || d.platforms == nil || d.boot.Elapsed() > sshLateAfter
}

// bootProgress marks "containers started" once every container of the
// running revision has started and "READY" once the revision is, and
// then prints the boot timeline (embedded mode: the console is the
// device's). Called by each WAIT round, which a container's start wakes.
func (d *Daemon) bootProgress() {
	if d.bootShown || d.platforms == nil {
		return
	}
	if cs, err := d.platforms.Containers(); err == nil {
		all := true
		for _, c := range cs {
			if c.Status != platform.Started.String() && c.Status != platform.Ready.String() {
				all = false
				break
			}
		}
		if all {
			d.boot.Mark("containers started")
		}
	}
	if d.platforms.RevisionStatus() != platform.Ready.String() {
		return
	}
	d.boot.Mark("READY")
	d.bootShown = true
	if d.mode == Embedded {
		d.log.Info(d.boot.String())
	}
}
