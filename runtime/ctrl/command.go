package ctrl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// Op is a /commands operation.
type Op string

// The operations of POST /commands (upstream names).
const (
	OpUpdateMetadata Op = "UPDATE_METADATA"
	OpReboot         Op = "REBOOT_DEVICE"
	OpPoweroff       Op = "POWEROFF_DEVICE"
	OpTryOnce        Op = "TRY_ONCE"
	OpLocalRun       Op = "LOCAL_RUN"
	OpMakeFactory    Op = "MAKE_FACTORY"
	OpRunGC          Op = "RUN_GC"
	OpEnableSSH      Op = "ENABLE_SSH"
	OpDisableSSH     Op = "DISABLE_SSH"
	OpGoRemote       Op = "GO_REMOTE"
	OpDeferReboot    Op = "DEFER_REBOOT"
	OpLocalRunCommit Op = "LOCAL_RUN_COMMIT"
	OpLocalApply     Op = "LOCAL_APPLY"
	OpXConnectGraph  Op = "XCONNECT_GRAPH"
	OpUnclaim        Op = "UNCLAIM"
)

// Ops lists every operation in upstream's enum order.
var Ops = []Op{OpUpdateMetadata, OpReboot, OpPoweroff, OpTryOnce, OpLocalRun,
	OpMakeFactory, OpRunGC, OpEnableSSH, OpDisableSSH, OpGoRemote, OpDeferReboot,
	OpLocalRunCommit, OpLocalApply, OpXConnectGraph, OpUnclaim}

// Command is one parsed /commands request.
type Command struct {
	Op      Op
	Payload string
}

// CommandState is the daemon state the /commands rejection rules look at.
type CommandState struct {
	Local         bool // running a locals/* revision (local mode)
	Updating      bool // an update exists
	Claimed       bool // device claimed on the Hub
	RemoteAllowed bool // PV_CONTROL_REMOTE
	DebugShell    bool // a debug shell is open
	Remote        bool // already in remote mode
	Unclaimed     bool // already unclaimed (no creds)
}

// Commands is the FSM's command queue.
type Commands interface {
	// CommandState snapshots the state the rejection rules need.
	CommandState() CommandState
	// Queue queues c for the FSM; ErrBusy when one is already queued,
	// ErrNotImplemented for an op the daemon does not handle.
	Queue(c Command) error
}

// ParseCommand parses and validates a /commands body. Op names match
// exactly (upstream's prefix match, where "" means UPDATE_METADATA, is not
// copied) and payload is mandatory, even "".
func ParseCommand(body []byte) (Command, error) {
	var raw struct {
		Op      *string `json:"op"`
		Payload *string `json:"payload"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return Command{}, fmt.Errorf("command: %w: %w", ErrInvalid, err)
	}
	if dec.More() {
		return Command{}, fmt.Errorf("command: %w: trailing data", ErrInvalid)
	}
	if raw.Op == nil {
		return Command{}, fmt.Errorf("command: %w: missing \"op\"", ErrInvalid)
	}
	if raw.Payload == nil {
		return Command{}, fmt.Errorf("command: %w: missing \"payload\"", ErrInvalid)
	}
	c := Command{Op: Op(*raw.Op), Payload: *raw.Payload}
	known := false
	for _, o := range Ops {
		if o == c.Op {
			known = true
		}
	}
	if !known {
		return Command{}, fmt.Errorf("command: %w: unknown op %q", ErrInvalid, *raw.Op)
	}
	if err := c.validate(); err != nil {
		return Command{}, fmt.Errorf("command %s: %w: %w", c.Op, ErrInvalid, err)
	}
	return c, nil
}

func (c Command) validate() error {
	switch c.Op {
	case OpLocalRun, OpLocalRunCommit, OpTryOnce, OpLocalApply:
		return ValidRevision(c.Payload)
	case OpMakeFactory:
		if c.Payload == "" {
			return nil
		}
		return ValidRevision(c.Payload)
	case OpUpdateMetadata:
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c.Payload), &m); err != nil {
			return fmt.Errorf("payload: want a one-key JSON object: %w", err)
		}
		if len(m) != 1 {
			return fmt.Errorf("payload: want a one-key JSON object, got %d keys", len(m))
		}
		for k := range m {
			if err := ValidMetaKey(k); err != nil {
				return fmt.Errorf("payload: %w", err)
			}
		}
	}
	return nil
}

// Reject applies upstream's /commands rejection rules, in order, and returns
// the status code to answer with (0 = accept), its message and the
// Retry-After seconds (0 = none). A queued command is checked by Queue.
func (c Command) Reject(s CommandState) (status int, msg string, retryAfter int) {
	switch {
	case c.Op == OpUpdateMetadata && s.Local:
		return 409, "Cannot update metadata in local mode", 0
	case s.Updating && (c.Op == OpReboot || c.Op == OpPoweroff || c.Op == OpLocalRun ||
		c.Op == OpLocalRunCommit || c.Op == OpMakeFactory || c.Op == OpUnclaim):
		return 503, "Update in progress, try again later", 600
	case c.Op == OpMakeFactory && s.Claimed:
		return 409, "Cannot make factory when device is claimed", 0
	case c.Op == OpGoRemote && !s.RemoteAllowed:
		return 409, "Remote mode disabled by configuration", 0
	case c.Op == OpDeferReboot && !s.DebugShell:
		return 409, "No debug shell open", 0
	case c.Op == OpGoRemote && s.Remote:
		return 204, "", 0
	case c.Op == OpUnclaim && s.Unclaimed:
		return 204, "", 0
	}
	return 0, "", 0
}

// ValidRevision checks a revision name: a decimal number or
// "locals/<name>" with one slash and at most 64 characters after the prefix
// (the storage rules, so the API and storage never disagree).
func ValidRevision(rev string) error {
	return storage.ValidRevision(rev)
}

// ValidMetaKey checks a metadata key: non-empty, no '/', '\', NUL, not "."
// or "..", at most 255 bytes (one file per key).
func ValidMetaKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("key: empty")
	case k == "." || k == "..":
		return fmt.Errorf("key %q: dot name", k)
	case strings.ContainsAny(k, "/\\\x00"):
		return fmt.Errorf("key %q: contains '/', '\\' or NUL", k)
	case len(k) > 255:
		return fmt.Errorf("key: longer than 255 bytes")
	}
	return nil
}
