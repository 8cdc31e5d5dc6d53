package xconnect

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// inRoot resolves paths inside a container's root directory: every
// component resolves as if the root were "/" (a link to "/x" or "../x"
// stays inside), and /proc magic links are refused.
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// errNotSocket refuses to replace something that is not a socket at an
// injection target.
var errNotSocket = errors.New("exists and is not a socket")

// openRoot opens the root directory of process pid (O_PATH).
func openRoot(procRoot string, pid int) (int, error) {
	p := procRoot + "/" + strconv.Itoa(pid) + "/root"
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return fd, nil
}

// openDir opens directory dir inside root (O_PATH); with create, missing
// directories are made (0755), each inside root too.
func openDir(root int, dir string, create bool) (int, error) {
	dir = path.Clean("/" + dir)
	fd, err := unix.Openat2(root, dir, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: inRoot})
	if err == nil || !create || !errors.Is(err, unix.ENOENT) {
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: dir, Err: err}
		}
		return fd, nil
	}
	cur, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	walked := ""
	for _, c := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		walked += "/" + c
		next, err := unix.Openat2(root, walked, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: inRoot})
		if errors.Is(err, unix.ENOENT) {
			// cur is walked's parent, resolved inside root: c is a plain
			// name, so mkdirat cannot leave it.
			if err := unix.Mkdirat(cur, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(cur)
				return -1, &os.PathError{Op: "mkdir", Path: walked, Err: err}
			}
			next, err = unix.Openat2(root, walked, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: inRoot})
		}
		unix.Close(cur)
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: walked, Err: err}
		}
		cur = next
	}
	return cur, nil
}

// fdPath names base in the directory open as dirfd, for calls that take
// a path (bind, connect): the kernel resolves it through the fd.
func fdPath(dirfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + base
}

// clearStale removes what an earlier pv-xconnect run left at base in
// dirfd: a file of type kind (S_IFSOCK, S_IFCHR); anything else there is
// left alone and refused with notKind.
func clearStale(dirfd int, base string, kind uint32, notKind error) error {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != kind {
		return fmt.Errorf("%s: %w", base, notKind)
	}
	return unix.Unlinkat(dirfd, base, 0)
}
