package ctrl

import (
	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// Commands is the FSM's command queue (POST /commands).
type Commands interface {
	// CommandState snapshots the state the rejection rules need.
	CommandState() command.State
	// Queue queues c for the FSM; ErrBusy when one is already queued,
	// ErrNotImplemented for an op the daemon does not handle.
	Queue(c command.Command) error
}

// ValidRevision checks a revision name: a decimal number or
// "locals/<name>" with one slash and at most 64 characters after the prefix
// (the storage rules, so the API and storage never disagree).
func ValidRevision(rev string) error {
	return storage.ValidRevision(rev)
}
