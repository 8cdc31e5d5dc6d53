package pantavisor

import "golang.org/x/sys/unix"

// lowerThreadPriority sets the nice value of the calling thread only
// (Linux's setpriority takes a thread id).
func lowerThreadPriority(nice int) error {
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice)
}
