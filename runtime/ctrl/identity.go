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
	"sync"
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

// connState is per connection: the peer cannot change during a
// connection, so it is identified once.
type connState struct {
	conn   net.Conn
	once   sync.Once
	caller Caller
	err    error
}

// withConn stores the accepted connection in ctx (http.Server.ConnContext).
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{conn: c})
}

// WithCaller returns ctx carrying an already resolved caller; requests
// carrying one skip the peer credential lookup (in-process callers, tests).
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// ErrUnknownCaller is returned when the peer cannot be identified.
var ErrUnknownCaller = errors.New("unknown caller")

// CgroupName extracts the container name from the contents of a
// /proc/<pid>/cgroup file. It returns HostName for processes that are not in
// a container. v1/hybrid hierarchies use the "name=pantavisor" line, v2 the
// part after "/lxc/". With appengine set, an LXC "-<digits>" suffix is
// stripped.
func CgroupName(r io.Reader, appengine bool) (string, error) {
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
				return HostName, nil
			}
			p = strings.TrimPrefix(p, "lxc/")
			return clean(first1(p), appengine)
		}
		if line[:first] == "0" && ctrls == "" {
			v2, haveV2 = path, true
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read cgroup: %w", err)
	}
	if !haveV2 {
		return "", fmt.Errorf("cgroup: %w: no pantavisor or v2 hierarchy", ErrUnknownCaller)
	}
	padded := v2 + "/" // "/lxc" alone is an (empty) container name too
	i := strings.Index(padded, "/lxc/")
	if i < 0 {
		// "/" (or "/.." in appengine, or any other cgroup outside lxc/) is
		// the host side.
		return HostName, nil
	}
	return clean(first1(padded[i+len("/lxc/"):]), appengine)
}

func first1(p string) string {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

func clean(name string, appengine bool) (string, error) {
	if appengine {
		if i := strings.LastIndexByte(name, '-'); i > 0 && i < len(name)-1 {
			if _, err := strconv.ParseUint(name[i+1:], 10, 32); err == nil {
				name = name[:i]
			}
		}
	}
	if name == "" {
		return "", fmt.Errorf("cgroup: %w: empty container name", ErrUnknownCaller)
	}
	return name, nil
}

// identify resolves a peer pid into a Caller using <procRoot>/<pid>/cgroup.
func (h *Handler) identify(pid int) (Caller, error) {
	f, err := os.Open(filepath.Join(h.procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return Caller{Pid: pid}, fmt.Errorf("caller %d: %w", pid, err)
	}
	defer f.Close()
	name, err := CgroupName(f, h.opt.AppEngine)
	if err != nil {
		return Caller{Pid: pid}, fmt.Errorf("caller %d: %w", pid, err)
	}
	c := Caller{Pid: pid, Name: name}
	if name == HostName {
		c.Mgmt = true
		return c, nil
	}
	if h.opt.Platforms == nil {
		return Caller{Pid: pid}, fmt.Errorf("caller %d (%s): %w", pid, name, ErrUnknownCaller)
	}
	known, mgmt := h.opt.Platforms.Caller(name)
	if !known {
		return Caller{Pid: pid}, fmt.Errorf("caller %d (%s): %w", pid, name, ErrUnknownCaller)
	}
	c.Mgmt = mgmt
	return c, nil
}

// caller returns the identity of the request's peer.
func (h *Handler) caller(ctx context.Context) (Caller, error) {
	if c, ok := ctx.Value(callerKey{}).(Caller); ok {
		return c, nil
	}
	cs, _ := ctx.Value(connKey{}).(*connState)
	if cs == nil {
		return Caller{}, fmt.Errorf("%w: no connection", ErrUnknownCaller)
	}
	cs.once.Do(func() {
		pid, err := peerPid(cs.conn)
		if err != nil {
			cs.err = fmt.Errorf("%w: %w", ErrUnknownCaller, err)
			return
		}
		cs.caller, cs.err = h.identify(pid)
	})
	return cs.caller, cs.err
}
