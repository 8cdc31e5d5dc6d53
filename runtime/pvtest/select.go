package pvtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoMatch is returned when a selection picks no test.
var ErrNoMatch = errors.New("no such test")

// ID names a test: tests/<Group>/<N>.
type ID struct {
	Group string
	N     int
}

func (id ID) String() string { return id.Group + ":" + strconv.Itoa(id.N) }

// Path is the test directory relative to the suites root.
func (id ID) Path() string { return filepath.Join(id.Group, strconv.Itoa(id.N)) }

// Rev is the initial local revision of the test: locals/<group>_<n>
// ("/" and "-" become "_", as upstream does).
func (id ID) Rev() string {
	return "locals/" + strings.NewReplacer("/", "_", "-", "_").Replace(id.Group) + "_" + strconv.Itoa(id.N)
}

// Less orders by group name, then number.
func (id ID) Less(o ID) bool {
	if id.Group != o.Group {
		return id.Group < o.Group
	}
	return id.N < o.N
}

// validGroup accepts the names of group directories.
func validGroup(g string) bool {
	if g == "" || g == "common" || strings.HasPrefix(g, ".") {
		return false
	}
	for _, r := range g {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Discover lists the tests under root: every <group>/<n>/test.json with a
// decimal n, sorted. Other directories (common/, data/) are ignored.
func Discover(root string) ([]ID, error) {
	groups, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []ID
	for _, g := range groups {
		if !g.IsDir() || !validGroup(g.Name()) {
			continue
		}
		ns, err := os.ReadDir(filepath.Join(root, g.Name()))
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			i, err := strconv.Atoi(n.Name())
			if err != nil || i < 0 || strconv.Itoa(i) != n.Name() {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, g.Name(), n.Name(), "test.json")); err == nil {
				ids = append(ids, ID{g.Name(), i})
			}
		}
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a].Less(ids[b]) })
	return ids, nil
}

// ParseSelector parses "group" or "group:n" ("" selects everything).
func ParseSelector(sel string) (group string, n int, err error) {
	if sel == "" {
		return "", -1, nil
	}
	g, num, hasN := strings.Cut(sel, ":")
	if !validGroup(g) {
		return "", 0, fmt.Errorf("selector %q: bad group name %q", sel, g)
	}
	if !hasN {
		return g, -1, nil
	}
	i, err := strconv.Atoi(num)
	if err != nil || i < 0 || strconv.Itoa(i) != num {
		return "", 0, fmt.Errorf("selector %q: %q is not a test number", sel, num)
	}
	return g, i, nil
}

// Select picks the tests matching selectors ("group" or "group:n"); none
// selects all. Each selector must match something.
func Select(all []ID, selectors ...string) ([]ID, error) {
	if len(selectors) == 0 {
		return all, nil
	}
	seen := map[ID]bool{}
	var out []ID
	for _, sel := range selectors {
		g, n, err := ParseSelector(sel)
		if err != nil {
			return nil, err
		}
		found := false
		for _, id := range all {
			if (g == "" || id.Group == g) && (n < 0 || id.N == n) {
				found = true
				if !seen[id] {
					seen[id] = true
					out = append(out, id)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %s", ErrNoMatch, sel)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Less(out[b]) })
	return out, nil
}

// Next is the number a new test of group gets (first unused).
func Next(root, group string) (int, error) {
	if !validGroup(group) {
		return 0, fmt.Errorf("bad group name %q (letters, digits, - and _)", group)
	}
	n := 0
	for {
		_, err := os.Stat(filepath.Join(root, group, strconv.Itoa(n)))
		if errors.Is(err, fs.ErrNotExist) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		n++
	}
}
