package signature

import (
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// Summary is what the signatures of a state claim, in the shape of
// `pvr sig ls`: {"protected":[…],"excluded":[…],"notseen":[…]}.
type Summary struct {
	// Protected keys are signed by at least one signature.
	Protected []string `json:"protected"`
	// Excluded keys are acknowledged without being signed: the
	// signatures themselves (_sigs/…) and keys an include glob matches
	// that an exclude glob takes out again.
	Excluded []string `json:"excluded"`
	// NotSeen keys are neither; strict mode rejects a state with any.
	NotSeen []string `json:"notseen"`
}

// Inspect summarizes the coverage st's signatures claim, by their globs
// alone: no signature is verified and no trust material is read. With
// every signature valid, strict mode passes exactly when NotSeen is
// empty.
func Inspect(st *state.State) Summary {
	signed := map[string]bool{}
	covered := map[string]bool{}
	ks := newKeySet(st)
	for k, sig := range st.Signatures() {
		s, c := ks.selectKeys(k, sig.Header.Include, sig.Header.Exclude)
		for _, x := range s {
			signed[x] = true
		}
		for _, x := range c {
			covered[x] = true
		}
	}
	sum := Summary{Protected: []string{}, Excluded: []string{}, NotSeen: []string{}}
	for _, k := range ks.keys {
		switch {
		case signed[k]:
			sum.Protected = append(sum.Protected, k)
		case covered[k] || strings.HasPrefix(k, SigsPrefix):
			sum.Excluded = append(sum.Excluded, k)
		default:
			sum.NotSeen = append(sum.NotSeen, k)
		}
	}
	for _, l := range [][]string{sum.Protected, sum.Excluded, sum.NotSeen} {
		sort.Strings(l)
	}
	return sum
}
