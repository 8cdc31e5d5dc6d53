package config

import "strings"

// Level is a configuration source. A value set at a higher level always
// wins over one set at a lower level, whatever the order of the calls.
type Level int

// The levels, lowest first (spec §8).
const (
	Default Level = iota
	Args
	PVConf
	PHConf
	Policy
	OEM
	PVCmdline
	PHCmdline
	Env
	Metadata
	Command
	numLevels
)

// levelNames are the "modified" strings of GET /config2.
var levelNames = [numLevels]string{
	Default:   "default",
	Args:      "args",
	PVConf:    "pv conf file",
	PHConf:    "ph conf file",
	Policy:    "policy",
	OEM:       "oem config",
	PVCmdline: "pv cmdline",
	PHCmdline: "ph cmdline",
	Env:       "env",
	Metadata:  "metadata",
	Command:   "command",
}

// String returns the upstream name of the level as shown by GET /config2.
func (l Level) String() string {
	if l < 0 || l >= numLevels {
		return "unknown"
	}
	return levelNames[l]
}

// ParseLevel returns the level named s (as printed by String).
func ParseLevel(s string) (Level, bool) {
	for l, n := range levelNames {
		if strings.EqualFold(n, s) {
			return Level(l), true
		}
	}
	return 0, false
}

// Mask is a set of levels.
type Mask uint16

// Mask returns the set holding only l.
func (l Level) Mask() Mask { return 1 << uint(l) }

// Has reports whether l is in the set.
func (m Mask) Has(l Level) bool { return l >= 0 && l < numLevels && m&l.Mask() != 0 }

// Levels returns the members of the set, lowest first.
func (m Mask) Levels() []Level {
	var out []Level
	for l := Default; l < numLevels; l++ {
		if m.Has(l) {
			out = append(out, l)
		}
	}
	return out
}

// String lists the level names, comma separated.
func (m Mask) String() string {
	var parts []string
	for _, l := range m.Levels() {
		parts = append(parts, l.String())
	}
	return strings.Join(parts, ",")
}
