package config

import "strings"

// SplitCmdline splits a kernel command line into words the way the kernel
// does: blanks separate words, and double quotes group blanks into a word
// (the quotes themselves are dropped).
func SplitCmdline(cmdline string) []string {
	var (
		words []string
		cur   strings.Builder
		inQ   bool
		have  bool
	)
	for _, c := range cmdline {
		switch {
		case c == '"':
			inQ, have = !inQ, true
		case !inQ && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0):
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(c)
			have = true
		}
	}
	if have {
		words = append(words, cur.String())
	}
	return words
}

// CmdlineArgs returns every word of the command line as name → value.
// "name=value" words split at the first '='; bare words map to "". A later
// word wins over an earlier one. The daemon reads the boot arguments that
// are not configuration keys from here: pv_rev, pv_try, pv_quickboot,
// pv_verityoff…
func CmdlineArgs(cmdline string) map[string]string {
	m := map[string]string{}
	for _, w := range SplitCmdline(cmdline) {
		k, v, _ := strings.Cut(w, "=")
		if k != "" {
			m[k] = v
		}
	}
	return m
}

// bootArgs are pv_ words that carry boot state, not configuration: they are
// skipped silently when the command line is loaded.
var bootArgs = map[string]bool{
	"pv_rev": true, "pv_try": true, "pv_trying": true, "pv_done": true,
	"pv_quickboot": true, "pv_verityoff": true, "pv_tryboot": true,
	"pv_embedded": true, "pv_standalone": true, "pv_appengine": true, "pv_debug": true,
	"pv_bootpart": true, "pv_boot": true, "pv_autogrow": true,
}

// cmdlinePair is a configuration setting found on the command line.
type cmdlinePair struct {
	word  string // the original word, for messages
	name  string // key name or alias to resolve
	value string
	level Level // PVCmdline or PHCmdline
}

// cmdlineConfig extracts the pv_/ph_ configuration words. A word pv_X=v (or
// ph_X=v) names the key PV_X when that is a key (so PV_LOG_LEVEL=4 and
// pv_log_level=4 work), else the key or legacy alias X (pv_log.level=4).
// Boot-state words (pv_rev…) are dropped; unknown names are returned with
// name set so the caller can report them.
func cmdlineConfig(cmdline string) []cmdlinePair {
	var out []cmdlinePair
	for _, w := range SplitCmdline(cmdline) {
		name, value, ok := strings.Cut(w, "=")
		if !ok || len(name) < 3 {
			continue
		}
		var lvl Level
		switch strings.ToLower(name[:3]) {
		case "pv_":
			lvl = PVCmdline
		case "ph_":
			lvl = PHCmdline
		default:
			continue
		}
		if bootArgs[strings.ToLower(name)] {
			continue
		}
		key := name
		if _, _, ok := resolve(name); !ok {
			key = name[3:]
		}
		out = append(out, cmdlinePair{word: w, name: key, value: value, level: lvl})
	}
	return out
}
