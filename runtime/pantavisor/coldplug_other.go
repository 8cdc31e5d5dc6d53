//go:build !linux

package pantavisor

// lowerThreadPriority is Linux's: elsewhere the coldplug keeps its priority.
func lowerThreadPriority(int) error { return nil }
