package signature

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// SigsPrefix is the state directory holding signatures; its keys are
// exempt from coverage.
const SigsPrefix = "_sigs/"

// SigKey returns the state key of the signature called name:
// "_sigs/<name>.json".
func SigKey(name string) string { return SigsPrefix + name + ".json" }

// PartGlobs returns the include and exclude globs `pvr sig add --part
// part` uses: the part's files and its _config overlay, minus its
// src.json and the signature itself.
func PartGlobs(part string) (include, exclude []string) {
	return []string{part + "/**", "_config/" + part + "/**"},
		[]string{part + "/src.json", SigKey(part)}
}

// BSPGlobs returns the globs meta-pantavisor signs the BSP with:
// --include 'bsp/**' --include device.json --include '#spec'
// --exclude bsp/src.json.
func BSPGlobs() (include, exclude []string) {
	return []string{"bsp/**", "device.json", "#spec"}, []string{"bsp/src.json"}
}

// stateKeys returns every key of st including "#spec", in state order.
func stateKeys(st *state.State) []string {
	keys := st.Keys()
	out := make([]string, 0, len(keys)+1)
	out = append(out, "#spec")
	return append(out, keys...)
}

// keySet is the keys of a state with their path elements, split once for
// all the signatures of a state.
type keySet struct {
	keys  []string
	elems [][]string
}

func newKeySet(st *state.State) keySet {
	ks := keySet{keys: stateKeys(st)}
	ks.elems = make([][]string, len(ks.keys))
	for i, k := range ks.keys {
		ks.elems[i] = strings.Split(k, "/")
	}
	return ks
}

// selectKeys splits the keys of a state for one signature: signed are the
// pairs in its payload (matched by an include glob and by no exclude
// glob), covered are all pairs matched by an include glob, signed or
// explicitly excluded. self, the signature's own key, is never selected:
// a signature cannot sign itself.
//
// Upstream counts every exclude match as covered (⚠ in the spec), which
// lets a signature "cover" keys outside its include globs without signing
// them; here an excluded pair only counts when an include glob also
// matches it, which keeps pvr's `sig ls` "excluded" semantics for the
// layouts pvr and meta-pantavisor produce (P/src.json under P/**).
func (ks keySet) selectKeys(self string, include, exclude []string) (signed, covered []string) {
	inc, exc := compileAll(include), compileAll(exclude)
	for i, k := range ks.keys {
		if k == self || !inc.match(ks.elems[i]) {
			continue
		}
		covered = append(covered, k)
		if !exc.match(ks.elems[i]) {
			signed = append(signed, k)
		}
	}
	return signed, covered
}

// Payload returns the bytes a signature with the given globs signs: the
// canonical JSON object (state.Canonical, byte-identical to what pvr
// signs) of the selected pairs, with inline JSON values as their
// canonical bytes and object shas as strings. self is the key of the
// signature itself (excluded), "" if none.
func Payload(st *state.State, self string, include, exclude []string) ([]byte, error) {
	signed, _ := newKeySet(st).selectKeys(self, include, exclude)
	return payloadOf(st, signed)
}

func payloadOf(st *state.State, keys []string) ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		name, err := json.Marshal(k)
		if err != nil {
			return nil, fmt.Errorf("payload key %q: %w", k, err)
		}
		v, ok := st.Raw(k)
		if !ok {
			return nil, fmt.Errorf("payload key %q: no value", k)
		}
		b.Write(name)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	// Canonicalize the whole object so key order and string escapes are
	// exactly pvr's, whatever order the state lists its keys in.
	out, err := state.Canonical([]byte(b.String()))
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return out, nil
}
