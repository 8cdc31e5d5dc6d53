package update

import (
	"errors"
	"sync"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/command"
)

// TestConcurrentReaders drives updates (a non-reboot one through
// INPROGRESS, TESTING and UPDATED, a failing one, a reboot one) on the
// owner goroutine while other goroutines call what the daemon calls from
// its HTTP handlers: Updating, Progress, Keep, Running, HookEnv. Run
// with -race: it failed while phase, the progress and the parsed state
// of the update were written without the lock these readers take
// (issue 11), and while Keep read the boot loader's variables the owner
// changes.
var errFake = errors.New("container crashed")

func TestConcurrentReaders(t *testing.T) {
	d := newDevice(t, "grub")
	d.addRev("2", appChange())
	d.addRev("3", appChange())
	d.addRev("4", bspChange())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d.u.Updating()
				d.u.Progress()
				d.u.Keep()
				d.u.Running()
				d.u.HookEnv()
			}
		}()
	}
	if next, err := run(d, command.OpLocalRun, "2"); next != Stay || err != nil {
		t.Fatalf("LOCAL_RUN 2 = %v, %v", next, err)
	}
	d.testAndCommit()
	d.c.failed = nil
	if next, err := run(d, command.OpLocalRun, "3"); next != Stay || err != nil {
		t.Fatalf("LOCAL_RUN 3 = %v, %v", next, err)
	}
	if next := d.u.ContainerFailed(errFake); next != Rollback {
		t.Errorf("ContainerFailed = %v, want Rollback", next)
	}
	if next, err := run(d, command.OpLocalRun, "4"); next != Reboot || err != nil {
		t.Fatalf("LOCAL_RUN 4 = %v, %v", next, err)
	}
	close(stop)
	wg.Wait()
	d.wantObjectsOf("1")
	d.wantObjectsOf("4")
}
