package ctrl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// HostName is the caller name of processes outside any container
// (pantavisor itself and its daemons).
const HostName = "_pv_"

// Caller is the identity of the process on the other end of the socket.
type Caller struct {
	Pid  int
	Name string // platform name or HostName; "" = unknown
	Mgmt bool
}

type connKey struct{}

type callerKey struct{}

// connCaller is the identity a connection got at accept: its peer cannot
// change during the connection, so it is identified once, before the peer
// could hand the socket on and exit (issue 11, defect 3).
type connCaller struct {
	caller Caller
	err    error
}

// WithCaller returns ctx carrying an already resolved caller; requests
// carrying one skip the peer credential lookup (in-process callers, tests).
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// ErrUnknownCaller is returned when the peer cannot be identified.
var ErrUnknownCaller = errors.New("unknown caller")

// CgroupName extracts the container name from the contents of a
// /proc/<pid>/cgroup file; host is true for processes outside any container
// (their caller name is HostName). v1/hybrid hierarchies use the
// "name=pantavisor" line, v2 the part after "/lxc/". The name is returned
// as the cgroup has it: an App Engine "-<digits>" instance suffix is only
// considered by the caller lookup, after the exact name (see resolve).
func CgroupName(r io.Reader) (name string, host bool, err error) {
	var v2 string
	haveV2 := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		// hierarchy-ID:controller-list:cgroup-path
		first := strings.IndexByte(line, ':')
		if first < 0 {
			continue
		}
		rest := line[first+1:]
		second := strings.IndexByte(rest, ':')
		if second < 0 {
			continue
		}
		ctrls, path := rest[:second], rest[second+1:]
		if ctrls == "name=pantavisor" {
			p := strings.TrimPrefix(path, "/")
			if p == "" {
				return "", true, nil
			}
			p = strings.TrimPrefix(p, "lxc/")
			return container(first1(p))
		}
		if line[:first] == "0" && ctrls == "" {
			v2, haveV2 = path, true
		}
	}
	if err := sc.Err(); err != nil {
		return "", false, fmt.Errorf("read cgroup: %w", err)
	}
	if !haveV2 {
		return "", false, fmt.Errorf("cgroup: %w: no pantavisor or v2 hierarchy", ErrUnknownCaller)
	}
	padded := v2 + "/" // "/lxc" alone is an (empty) container name too
	i := strings.Index(padded, "/lxc/")
	if i < 0 {
		// "/" (or "/.." in appengine, or any other cgroup outside lxc/) is
		// the host side.
		return "", true, nil
	}
	return container(first1(padded[i+len("/lxc/"):]))
}

func first1(p string) string {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

func container(name string) (string, bool, error) {
	if name == "" {
		return "", false, fmt.Errorf("cgroup: %w: empty container name", ErrUnknownCaller)
	}
	return name, false, nil
}

// instanceBase returns name without an App Engine "-<digits>" instance
// suffix ("app-2" → "app"), and false when name has none.
func instanceBase(name string) (string, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return "", false
	}
	if _, err := strconv.ParseUint(name[i+1:], 10, 32); err != nil {
		return "", false
	}
	return name[:i], true
}

// resolve turns the contents of a caller's /proc/<pid>/cgroup into a
// Caller. Only the host cgroup makes the host: a container whose name is
// HostName is a platform like any other (runtime/state refuses such names).
//
// The exact cgroup name is looked up first. In App Engine mode, and only
// when the exact name is not a platform, the name without a "-<digits>"
// instance suffix is tried: upstream names App Engine cgroups
// "<platform>-<n>". A platform "alpha-7" thus stays "alpha-7" even when
// "alpha" exists (issue 11, defect 2). The fallback cannot lend a role to
// another platform: our LXC configuration pins each container's cgroup to
// its exact name (lxc.cgroup.dir.container, which fails rather than adding
// a suffix), and containers cannot create cgroups beside their own, so a
// cgroup "alpha-7" at the lxc/ level holds either platform "alpha-7" or an
// instance of "alpha" made outside the daemon.
func (h *Handler) resolve(pid int, cgroup io.Reader) (Caller, error) {
	name, host, err := CgroupName(cgroup)
	if err != nil {
		return Caller{Pid: pid}, fmt.Errorf("caller %d: %w", pid, err)
	}
	if host {
		return Caller{Pid: pid, Name: HostName, Mgmt: true}, nil
	}
	if h.opt.Platforms == nil {
		return Caller{Pid: pid}, fmt.Errorf("caller %d (%s): %w", pid, name, ErrUnknownCaller)
	}
	known, mgmt := h.opt.Platforms.Caller(name)
	if !known && h.opt.AppEngine {
		if base, ok := instanceBase(name); ok {
			if known, mgmt = h.opt.Platforms.Caller(base); known {
				name = base
			}
		}
	}
	if !known {
		return Caller{Pid: pid}, fmt.Errorf("caller %d (%s): %w", pid, name, ErrUnknownCaller)
	}
	return Caller{Pid: pid, Name: name, Mgmt: mgmt}, nil
}

// PeerCaller identifies the process that connected c: its pid and a
// pidfd from the socket's peer credentials, its cgroup from
// <procRoot>/<pid>/cgroup, then a check through the pidfd that the process
// still runs, so the cgroup read was its own and not that of a process
// that reused the pid. A peer that is gone by then stays unknown.
// Handler's default Identify; it runs at accept.
func (h *Handler) PeerCaller(c net.Conn) (Caller, error) {
	p, err := peerOf(c)
	if err != nil {
		return Caller{}, fmt.Errorf("%w: %w", ErrUnknownCaller, err)
	}
	defer p.close()
	f, err := os.Open(filepath.Join(h.procRoot, strconv.Itoa(p.pid), "cgroup"))
	if err != nil {
		return Caller{Pid: p.pid}, fmt.Errorf("caller %d: %w: %w", p.pid, ErrUnknownCaller, err)
	}
	caller, err := h.resolve(p.pid, f)
	f.Close()
	if err != nil {
		return caller, err
	}
	if !p.alive() {
		return Caller{Pid: p.pid}, fmt.Errorf("caller %d: %w: exited before it was identified", p.pid, ErrUnknownCaller)
	}
	return caller, nil
}

// caller returns the identity of the request's peer, resolved at accept.
func (h *Handler) caller(ctx context.Context) (Caller, error) {
	if c, ok := ctx.Value(callerKey{}).(Caller); ok {
		return c, nil
	}
	cc, _ := ctx.Value(connKey{}).(*connCaller)
	if cc == nil {
		return Caller{}, fmt.Errorf("%w: no connection", ErrUnknownCaller)
	}
	return cc.caller, cc.err
}
