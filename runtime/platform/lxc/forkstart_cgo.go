//go:build cgo && linux

package lxc

/*
#cgo pkg-config: lxc
#include <lxc/lxccontainer.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

// pv_fork_start forks a child that starts container name of lxcpath
// daemonized (with init argv, or lxc.init.cmd when argv is NULL), writes
// the init pid (or -1) to fd and exits. Only C runs in the
// child; it resets every signal to its default first, because the Go
// runtime's handlers cannot run in a forked copy of a Go process.
static pid_t pv_fork_start(const char *name, const char *lxcpath, int fd, const char *comm, char **argv) {
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return pid;
	}
	for (int s = 1; s < NSIG; s++) {
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	pid_t ipid = -1;
	struct lxc_container *c = lxc_container_new(name, lxcpath);
	if (c != NULL) {
		c->want_daemonize(c, true);
		c->want_close_all_fds(c, true);
		if (c->start(c, 0, argv))
			ipid = c->init_pid(c);
	}
	ssize_t n = write(fd, &ipid, sizeof(ipid));
	(void)n;
	_exit(ipid > 0 ? 0 : 1);
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// forkStart starts the container in a forked child, like upstream's
// pv-platform-<name> child. liblxc's daemonized start moves the calling
// process into the container's monitor cgroup, so it must never run in the
// daemon itself (whose cgroup is its caller identity on the control socket).
func forkStart(name, lxcpath string, timeout time.Duration, argv []string) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cname, cpath := C.CString(name), C.CString(lxcpath)
	comm := C.CString(truncate("pv-platform-"+name, 15))
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(cpath))
	defer C.free(unsafe.Pointer(comm))
	var cargv **C.char
	if len(argv) > 0 {
		arr := C.malloc(C.size_t(len(argv)+1) * C.size_t(unsafe.Sizeof(uintptr(0))))
		defer C.free(arr)
		s := unsafe.Slice((**C.char)(arr), len(argv)+1)
		for i, a := range argv {
			s[i] = C.CString(a)
			defer C.free(unsafe.Pointer(s[i]))
		}
		s[len(argv)] = nil
		cargv = (**C.char)(arr)
	}
	child, ferr := C.pv_fork_start(cname, cpath, C.int(w.Fd()), comm, cargv)
	w.Close()
	if child < 0 {
		return 0, fmt.Errorf("fork start helper: %w", ferr)
	}
	_ = r.SetReadDeadline(time.Now().Add(timeout))
	var buf [4]byte
	_, rerr := io.ReadFull(r, buf[:])
	if rerr != nil {
		// The helper hangs or died: make sure it is gone before reaping.
		_ = unix.Kill(int(child), unix.SIGKILL)
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(int(child), &ws, 0, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if rerr != nil {
		return 0, fmt.Errorf("start helper: %w", rerr)
	}
	pid := int(int32(binary.NativeEndian.Uint32(buf[:])))
	if pid <= 0 {
		return 0, errors.New("starting the container failed")
	}
	return pid, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
