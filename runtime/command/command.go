// Package command holds the device commands of POST /commands (upstream's
// op names) and what the daemon does next after one: the vocabulary shared
// by the control API (runtime/ctrl), the daemon's state machine
// (runtime/pantavisor) and the updater (runtime/update), so update logic
// does not depend on the HTTP layer.
//
//	c, err := command.Parse(body)       // exact op names, payload checked
//	status, msg, retry := c.Reject(st)  // upstream's rejection rules
//	next, err := updater.Run(ctx, c)    // command.Stay, Reboot or Rollback
package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// ErrInvalid is wrapped by every error of Parse.
var ErrInvalid = errors.New("invalid command")

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

// State is the daemon state the rejection rules look at.
type State struct {
	Local         bool // running a locals/* revision (local mode)
	Updating      bool // an update exists
	Claimed       bool // device claimed on the Hub
	RemoteAllowed bool // PV_CONTROL_REMOTE
	DebugShell    bool // a debug shell is open
	Remote        bool // already in remote mode
	Unclaimed     bool // already unclaimed (no creds)
}

// Parse parses and validates a /commands body. Op names match exactly
// (upstream's prefix match, where "" means UPDATE_METADATA, is not copied)
// and payload is mandatory, even "".
func Parse(body []byte) (Command, error) {
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
	if err := c.Validate(); err != nil {
		return Command{}, fmt.Errorf("command %s: %w: %w", c.Op, ErrInvalid, err)
	}
	return c, nil
}

// Validate checks c's payload for its op.
func (c Command) Validate() error {
	switch c.Op {
	case OpLocalRun, OpLocalRunCommit, OpTryOnce, OpLocalApply:
		return storage.ValidRevision(c.Payload)
	case OpMakeFactory:
		if c.Payload == "" {
			return nil
		}
		return storage.ValidRevision(c.Payload)
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
// the HTTP status to answer with (0 = accept), its message and the
// Retry-After seconds (0 = none). A queued command is checked by the queue.
func (c Command) Reject(s State) (status int, msg string, retryAfter int) {
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

// Next is where the daemon's state machine goes after a command or an
// update step.
type Next int

// The answers of an updater.
const (
	Stay     Next = iota // keep waiting
	Reboot               // reboot into the update
	Rollback             // the update failed: roll back
)

// String names n for logs.
func (n Next) String() string {
	switch n {
	case Stay:
		return "stay"
	case Reboot:
		return "reboot"
	case Rollback:
		return "rollback"
	}
	return fmt.Sprintf("Next(%d)", int(n))
}
