//go:build !pvupdate

package main

import "github.com/pantavisor/pantavisor-go/runtime/pantavisor"

// newUpdater is nil in the default build: update commands answer 501
// (see updater_on.go).
var newUpdater func(pantavisor.Env) (pantavisor.Updater, error)
