package pantavisor_test

import (
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/pantavisor"
	"github.com/pantavisor/pantavisor-go/runtime/pantavisor/updater"
)

// TestUpdateNoReboot runs a non-reboot LOCAL_RUN through the real daemon,
// runtime/update and real containers.
func TestUpdateNoReboot(t *testing.T) {
	pantavisor.RunUpdateNoReboot(t, updater.New, false, false)
}

// TestUpdateCrashRollsBack: a container of the new revision crashing
// without auto-recovery fails the update (ERROR) and rolls back.
func TestUpdateCrashRollsBack(t *testing.T) {
	pantavisor.RunUpdateNoReboot(t, updater.New, true, false)
}

// TestUpdateBadRevision: a revision naming an unknown group is refused;
// the running revision is not disturbed.
func TestUpdateBadRevision(t *testing.T) {
	pantavisor.RunUpdateNoReboot(t, updater.New, false, true)
}
