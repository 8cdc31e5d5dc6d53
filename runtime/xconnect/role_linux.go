package xconnect

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"golang.org/x/sys/unix"
)

// Nobody is the user a role missing from the provider's /etc/passwd is
// masqueraded as (as upstream pv-xconnect does).
const Nobody = 65534

// roleUser returns the uid and gid of role in the provider's passwd
// (read inside its root; at most 1 MiB): the entry named role, or for a
// numeric role the uid itself (its entry's gid when it has one, else the
// uid). ok is false when there is no such entry.
func roleUser(passwd io.Reader, role string) (uid, gid uint32, ok bool) {
	num, numErr := strconv.ParseUint(role, 10, 32)
	sc := bufio.NewScanner(io.LimitReader(passwd, 1<<20))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 {
			continue
		}
		u, err1 := strconv.ParseUint(f[2], 10, 32)
		g, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		if f[0] == role || numErr == nil && u == num {
			return uint32(u), uint32(g), true
		}
	}
	if numErr == nil {
		return uint32(num), uint32(num), true
	}
	return 0, 0, false
}

// mapID maps id of a user namespace to the host by its uid_map or
// gid_map ("inside outside count" lines).
func mapID(idMap []byte, id uint32) (uint32, bool) {
	for _, l := range strings.Split(string(idMap), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		in, e1 := strconv.ParseUint(f[0], 10, 32)
		out, e2 := strconv.ParseUint(f[1], 10, 32)
		n, e3 := strconv.ParseUint(f[2], 10, 32)
		if e1 != nil || e2 != nil || e3 != nil {
			continue
		}
		if uint64(id) >= in && uint64(id)-in < n {
			return uint32(out + uint64(id) - in), true
		}
	}
	return 0, false
}

// roleIdentity is a link's role as the provider knows it (uid) and as
// the host does (the credentials to connect with).
type roleIdentity struct {
	uid, hostUID, hostGID uint32
	found                 bool
}

// roleIdentity resolves l's role in the provider's /etc/passwd and maps
// it through the provider's user namespace.
func (m *Mesh) roleIdentity(l ctrl.XConnectLink) (roleIdentity, error) {
	root, err := openRoot(m.procRoot, l.ProviderPid)
	if err != nil {
		return roleIdentity{}, err
	}
	defer unix.Close(root)
	var id roleIdentity
	gid := uint32(Nobody)
	id.uid = Nobody
	fd, err := unix.Openat2(root, "/etc/passwd", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: inRoot})
	if err == nil {
		f := os.NewFile(uintptr(fd), "passwd")
		id.uid, gid, id.found = roleUser(f, l.Role)
		f.Close()
		if !id.found {
			id.uid, gid = Nobody, Nobody
		}
	}
	proc := m.procRoot + "/" + strconv.Itoa(l.ProviderPid)
	var ok bool
	for _, x := range []struct {
		file string
		in   uint32
		out  *uint32
	}{{"uid_map", id.uid, &id.hostUID}, {"gid_map", gid, &id.hostGID}} {
		b, err := os.ReadFile(proc + "/" + x.file)
		if err != nil {
			return id, err
		}
		if *x.out, ok = mapID(b, x.in); !ok {
			return id, fmt.Errorf("id %d is not mapped in the provider's %s", x.in, x.file)
		}
	}
	return id, nil
}

// dialRole connects to l's provider socket with the credentials of the
// link's role, so that what the provider reads from the socket
// (SO_PEERCRED, SO_PEERGROUPS) is the role, not pv-xconnect.
func (m *Mesh) dialRole(l ctrl.XConnectLink) (*net.UnixConn, roleIdentity, error) {
	id, err := m.roleIdentity(l)
	if err != nil {
		return nil, id, err
	}
	dir, base, err := m.providerDir(l)
	if err != nil {
		return nil, id, err
	}
	defer unix.Close(dir)
	c, err := dialAs(fdPath(dir, base), id.hostUID, id.hostGID)
	return c, id, err
}

// providerDir opens the directory of l's provider socket inside the
// provider's root; the socket may be recreated, so this is done at every
// dial.
func (m *Mesh) providerDir(l ctrl.XConnectLink) (int, string, error) {
	root, err := openRoot(m.procRoot, l.ProviderPid)
	if err != nil {
		return -1, "", err
	}
	defer unix.Close(root)
	sock := path.Clean(l.Socket)
	dir, err := openDir(root, path.Dir(sock), false)
	return dir, path.Base(sock), err
}

// dialAs connects to the Unix socket at p from a thread whose effective
// uid, gid and groups are uid, gid and [gid]. Credentials are per thread
// in Linux; the raw system calls change only this one (Go's and libc's
// wrappers change every thread), and the thread is never unlocked: it
// ends with its goroutine instead of going back to the scheduler with a
// foreign identity.
func dialAs(p string, uid, gid uint32) (*net.UnixConn, error) {
	type result struct {
		c   *net.UnixConn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, err := func() (*net.UnixConn, error) {
			groups := []uint32{gid}
			if _, _, e := unix.RawSyscall(sysSetgroups, 1, uintptr(unsafe.Pointer(&groups[0])), 0); e != 0 {
				return nil, fmt.Errorf("setgroups: %w", e)
			}
			none := ^uintptr(0)
			if _, _, e := unix.RawSyscall(sysSetresgid, none, uintptr(gid), none); e != 0 {
				return nil, fmt.Errorf("setresgid: %w", e)
			}
			if _, _, e := unix.RawSyscall(sysSetresuid, none, uintptr(uid), none); e != 0 {
				return nil, fmt.Errorf("setresuid: %w", e)
			}
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return nil, err
			}
			if err := unix.Connect(fd, &unix.SockaddrUnix{Name: p}); err != nil {
				unix.Close(fd)
				return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: p, Net: "unix"}, Err: err}
			}
			f := os.NewFile(uintptr(fd), p)
			defer f.Close()
			c, err := net.FileConn(f)
			if err != nil {
				return nil, err
			}
			return c.(*net.UnixConn), nil
		}()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
