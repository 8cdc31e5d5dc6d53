package state

import "bytes"

// Diff returns the paths that differ between old and new, in path order:
// Added (only in new), Removed (only in old) and Modified (object entries
// with another sha, inline values with other canonical bytes). "#spec" is
// not compared. A nil state counts as empty. Each change carries Owner(path);
// State.PlatformOwning maps it to a platform of either state.
func Diff(old, new *State) []Change {
	var ok, nk []string
	if old != nil {
		ok = old.keys
	}
	if new != nil {
		nk = new.keys
	}
	var out []Change
	i, j := 0, 0
	for i < len(ok) || j < len(nk) {
		switch {
		case j >= len(nk) || (i < len(ok) && ok[i] < nk[j]):
			out = append(out, Change{Path: ok[i], Owner: Owner(ok[i]), Kind: Removed})
			i++
		case i >= len(ok) || nk[j] < ok[i]:
			out = append(out, Change{Path: nk[j], Owner: Owner(nk[j]), Kind: Added})
			j++
		default:
			if !bytes.Equal(old.vals[ok[i]], new.vals[nk[j]]) {
				out = append(out, Change{Path: ok[i], Owner: Owner(ok[i]), Kind: Modified})
			}
			i++
			j++
		}
	}
	return out
}
