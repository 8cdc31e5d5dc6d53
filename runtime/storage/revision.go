package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// LocalPrefix starts the name of every local revision.
const LocalPrefix = "locals/"

// MaxLocalName is the longest name allowed after LocalPrefix.
const MaxLocalName = 64

// maxRevisionDigits bounds numeric revision names (fits an int64).
const maxRevisionDigits = 18

// ValidRevision checks a revision name: a decimal number without leading
// zeros ("0", "1", …) or LocalPrefix followed by a name of 1 to
// MaxLocalName bytes without "/", control characters or backslashes that
// is neither "." nor "..", and does not start with ".".
func ValidRevision(rev string) error {
	if strings.HasPrefix(rev, LocalPrefix) {
		if err := validLocalName(rev[len(LocalPrefix):]); err != nil {
			return fmt.Errorf("%w %q: %s", ErrBadRevision, rev, err.Error())
		}
		return nil
	}
	if !numericRevision(rev) {
		return fmt.Errorf("%w %q: want a decimal number or %s<name>", ErrBadRevision, rev, LocalPrefix)
	}
	return nil
}

// IsLocal reports whether rev is a valid local revision name (locals/<name>).
func IsLocal(rev string) bool {
	return strings.HasPrefix(rev, LocalPrefix) && validLocalName(rev[len(LocalPrefix):]) == nil
}

func numericRevision(rev string) bool {
	if rev == "" || len(rev) > maxRevisionDigits || (rev[0] == '0' && len(rev) > 1) {
		return false
	}
	for i := 0; i < len(rev); i++ {
		if rev[i] < '0' || rev[i] > '9' {
			return false
		}
	}
	return true
}

type nameError string

func (e nameError) Error() string { return string(e) }

func validLocalName(name string) error {
	switch {
	case name == "":
		return nameError("empty local name")
	case len(name) > MaxLocalName:
		return nameError(fmt.Sprintf("local name longer than %d bytes", MaxLocalName))
	case strings.Contains(name, "/"):
		return nameError("more than one /")
	case name[0] == '.':
		return nameError("local name starts with .")
	case !utf8.ValidString(name):
		return nameError("local name is not UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return nameError(fmt.Sprintf("local name contains %q", r))
		}
	}
	return nil
}

// TrailDir returns the directory of revision rev (trails/<rev>). It does
// not validate rev; the other revision methods do.
func (s *Storage) TrailDir(rev string) string {
	return filepath.Join(s.trailsDir(), filepath.FromSlash(rev))
}

// Revisions lists the revisions that have a trail directory: numeric ones
// in numeric order, then local ones by name. "current", "locals", dot
// entries and names that are not valid revisions are left out.
func (s *Storage) Revisions() ([]string, error) {
	var nums []int64
	var locals []string
	ents, err := os.ReadDir(s.trailsDir())
	if err != nil {
		return nil, fmt.Errorf("list revisions: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || !numericRevision(e.Name()) {
			continue
		}
		n, _ := strconv.ParseInt(e.Name(), 10, 64)
		nums = append(nums, n)
	}
	ents, err = os.ReadDir(filepath.Join(s.trailsDir(), "locals"))
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("list revisions: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() && validLocalName(e.Name()) == nil {
			locals = append(locals, LocalPrefix+e.Name())
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	sort.Strings(locals)
	out := make([]string, 0, len(nums)+len(locals))
	for _, n := range nums {
		out = append(out, strconv.FormatInt(n, 10))
	}
	return append(out, locals...), nil
}

// HasRevision reports whether revision rev has a trail directory.
func (s *Storage) HasRevision(rev string) bool {
	if ValidRevision(rev) != nil {
		return false
	}
	fi, err := os.Stat(s.TrailDir(rev))
	return err == nil && fi.IsDir()
}
