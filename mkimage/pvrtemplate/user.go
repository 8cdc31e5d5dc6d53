package pvrtemplate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUser is wrapped when the image config's User names a user or group
// that the image's /etc/passwd or /etc/group does not have.
var ErrUser = errors.New("image user not found")

// Accounts are an image's /etc/passwd and /etc/group (either may be
// empty): a named User resolves against them.
type Accounts struct {
	Passwd, Group []byte
}

// ResolveUser maps an image config User ("user", "uid", "user:group",
// "uid:gid", mixed) to numeric ids as Docker does: a name is looked up in
// the image's files and must exist; a uid without entry is taken as is;
// without a group the user's passwd entry gives it (0 when it has none);
// a numeric group is taken as is.
func ResolveUser(spec string, acc Accounts) (uid, gid uint32, err error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	if u == "" || (hasGroup && g == "") {
		return 0, 0, fmt.Errorf("%w: User %q (want user[:group])", ErrArg, spec)
	}
	n, numeric := parseID(u)
	found := false
	for _, f := range fields(acc.Passwd, 7) {
		id, ok1 := parseID(f[2])
		pg, ok2 := parseID(f[3])
		if !ok1 || !ok2 {
			continue
		}
		if (numeric && id == n) || (!numeric && f[0] == u) {
			uid, gid, found = id, pg, true
			break
		}
	}
	switch {
	case !found && !numeric:
		return 0, 0, fmt.Errorf("%w: no user %q in the image's /etc/passwd", ErrUser, u)
	case !found:
		uid = n
	}
	if !hasGroup {
		return uid, gid, nil
	}
	if n, ok := parseID(g); ok {
		return uid, n, nil
	}
	for _, f := range fields(acc.Group, 4) {
		if id, ok := parseID(f[2]); ok && f[0] == g {
			return uid, id, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: no group %q in the image's /etc/group", ErrUser, g)
}

// parseID reads a decimal 32-bit id (not 2^32-1, which means "none").
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}

// fields splits the lines of a passwd/group file with at least min
// colon-separated fields; comments and short lines are skipped, as libc
// does.
func fields(b []byte, min int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if f := strings.Split(l, ":"); len(f) >= min {
			out = append(out, f)
		}
	}
	return out
}
