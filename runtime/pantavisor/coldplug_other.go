//go:build !linux

package pantavisor

// lowerThreadPriority is Linux's: elsewhere the coldplug keeps its priority.
func lowerThreadPriority(int) error { return nil }

// idleThreadIO is Linux's: elsewhere the late checksum reads at the
// default I/O priority.
func idleThreadIO() error { return nil }
