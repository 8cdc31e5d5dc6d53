package lxc

import (
	"strings"
)

// logTailLines is how many of the last lines of the LXC log an error
// carries after its first ERROR line.
const logTailLines = 6

// logSummary turns an LXC log into the tail of a start error: the first
// ERROR line's message first (the cause: later ERRORs are its
// consequences, and the last lines are often the WARNs of LXC's cleanup),
// then the last lines as context. It returns "" for an empty log.
func logSummary(data []byte) string {
	text := strings.TrimSpace(string(data))
	if text == "" {
		return ""
	}
	lines := strings.Split(text, "\n")
	first := ""
	for _, l := range lines {
		if msg, ok := errorMessage(l); ok {
			first = msg
			break
		}
	}
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	tail := "lxc log: " + strings.Join(lines, " | ")
	if first == "" {
		return "; " + tail
	}
	return ": " + first + "; " + tail
}

// errorMessage returns the message of an LXC log line of level ERROR
// ("lxc <name> <time> ERROR <module> - <file>:<func>:<line> - <message>"),
// without the prefix up to the source location.
func errorMessage(line string) (string, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "lxc" || f[3] != "ERROR" {
		return "", false
	}
	// What follows the (space-padded) level is "<module> - <src> - <msg>".
	rest := line
	for range 4 {
		rest = strings.TrimLeft(rest, " \t")
		rest = rest[strings.IndexAny(rest+" ", " \t"):]
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return "", false
	}
	parts := strings.SplitN(rest, " - ", 3)
	if len(parts) == 3 && parts[2] != "" {
		return parts[2], true
	}
	return rest, true
}
