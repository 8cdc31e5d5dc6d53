package pantavisor

import "golang.org/x/sys/unix"

// lowerThreadPriority sets the nice value of the calling thread only
// (Linux's setpriority takes a thread id).
func lowerThreadPriority(nice int) error {
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice)
}

// idleThreadIO puts the calling thread's disk reads in the idle I/O class
// (ioprio_set(IOPRIO_WHO_PROCESS, tid, IOPRIO_CLASS_IDLE)): mq-deadline
// and BFQ serve them only when no other request waits, so reading objects
// to hash them does not delay what the container start reads.
func idleThreadIO() error {
	const whoProcess, classIdle, classShift = 1, 3, 13
	if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, whoProcess, uintptr(unix.Gettid()), classIdle<<classShift); e != 0 {
		return e
	}
	return nil
}
