package logserver

import (
	"fmt"
	"strconv"
	"strings"
)

// Level is a Pantavisor log level. Lower is more severe; PV_LOG_LEVEL keeps
// every message whose level is <= the configured one.
type Level int

// Pantavisor log levels (the numeric values are part of the wire protocols).
const (
	Fatal Level = iota // 0
	Error              // 1
	Warn               // 2
	Info               // 3
	Debug              // 4
	All                // 5, also called TRACE
)

var levelNames = [...]string{"FATAL", "ERROR", "WARN", "INFO", "DEBUG", "ALL"}

// String returns the upper-case level name used in log files ("INFO").
func (l Level) String() string {
	if l < Fatal {
		return levelNames[Fatal]
	}
	if l > All {
		return levelNames[All]
	}
	return levelNames[l]
}

// clamp forces l into [Fatal, All].
func (l Level) clamp() Level {
	if l < Fatal {
		return Fatal
	}
	if l > All {
		return All
	}
	return l
}

// ParseLevel accepts a decimal 0..5 or a level name (FATAL, ERROR, WARN,
// WARNING, INFO, DEBUG, ALL, TRACE; any case).
func ParseLevel(s string) (Level, error) {
	t := strings.TrimSpace(s)
	if n, err := strconv.Atoi(t); err == nil {
		if n < int(Fatal) || n > int(All) {
			return 0, fmt.Errorf("log level %q: out of range 0..5", s)
		}
		return Level(n), nil
	}
	switch strings.ToUpper(t) {
	case "FATAL", "CRIT", "CRITICAL", "EMERG", "ALERT":
		return Fatal, nil
	case "ERROR", "ERR":
		return Error, nil
	case "WARN", "WARNING":
		return Warn, nil
	case "INFO", "NOTICE":
		return Info, nil
	case "DEBUG":
		return Debug, nil
	case "ALL", "TRACE":
		return All, nil
	}
	return 0, fmt.Errorf("log level %q: unknown", s)
}

// syslogLevel maps an RFC severity (0..7) to a Pantavisor level:
// 0-1 FATAL, 2-3 ERROR, 4 WARN, 5-6 INFO, 7 DEBUG.
func syslogLevel(sev int) Level {
	switch {
	case sev <= 1:
		return Fatal
	case sev <= 3:
		return Error
	case sev == 4:
		return Warn
	case sev <= 6:
		return Info
	}
	return Debug
}
