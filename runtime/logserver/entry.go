package logserver

import "time"

// Platform names with a fixed meaning.
const (
	// PlatformPantavisor is the platform of pantavisor's own messages.
	PlatformPantavisor = "pantavisor"
	// PlatformUnknown is used when the sender's cgroup names no platform.
	PlatformUnknown = "unknown-platform"
)

// Entry is one log message.
type Entry struct {
	Time     time.Time // zero = now
	Level    Level
	Platform string // "pantavisor" or a container name
	Source   string // may contain '/' (e.g. "lxc/console.log")
	Msg      string
	// Raw marks Msg as a byte-exact chunk (LEGACY protocol): container
	// files receive it unchanged instead of getting a trailing newline.
	Raw bool
	// onConsole: a kernel record the kernel printed on the console the
	// stdout outputs write to (SubscribeKmsg).
	onConsole bool
}

// record is an Entry stamped at dispatch time with the revision and update
// state, so outputs write it where it belonged when it was produced.
type record struct {
	Entry
	rev    string // logs/<rev>
	update string // update revision capturing errors, "" = none
}
