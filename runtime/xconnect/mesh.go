package xconnect

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"sync"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"golang.org/x/sys/unix"
)

// plugin serves one accepted consumer connection of a link: it dials the
// provider and mediates until either side is done.
type plugin func(l ctrl.XConnectLink, consumer *net.UnixConn, dial func() (*net.UnixConn, error), log *slog.Logger)

// plugins are the socket plugins by link type; "dbus" dials as the
// link's role (proxyDBus) and "drm" injects a device node (injectNode).
var plugins = map[string]plugin{
	"unix":    proxyUnix,
	"rest":    proxyREST,
	"wayland": proxyUnix,
}

// Mesh holds the injected resources of the links it was given. Reconcile
// is called from one goroutine (the daemon loop); connections are served
// by goroutines of their own.
type Mesh struct {
	log      *slog.Logger
	procRoot string
	sysRoot  string
	active   map[string]*injected
	skipped  map[string]bool // unsupported links, logged once
	// refused holds the drm links a consumer's cgroup2 device program
	// refused: it does not change while the consumer runs.
	refused map[refusal]error
}

// injected is one link's socket (or device node: ln nil) in its
// consumer's namespace.
type injected struct {
	link ctrl.XConnectLink
	ln   *net.UnixListener
	dir  int // the target's directory in the consumer's root (O_PATH)
	base string
	rdev uint64 // the device node's number (drm)
	// devCg is the consumer's cgroup v1 devices directory (drm), where
	// pv-xconnect allowed rdev if granted.
	devCg   string
	granted bool

	mu    sync.Mutex
	conns map[net.Conn]bool
	done  chan struct{}
}

// NewMesh returns an empty mesh; procRoot is "/proc" but for tests.
func NewMesh(log *slog.Logger, procRoot string) *Mesh {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if procRoot == "" {
		procRoot = "/proc"
	}
	return &Mesh{log: log, procRoot: procRoot, sysRoot: "/sys", active: map[string]*injected{}, skipped: map[string]bool{}, refused: map[refusal]error{}}
}

// key identifies a link: a consumer or provider restarted (new pid), or a
// changed socket, role or type, is a new link.
func key(l ctrl.XConnectLink) string {
	return fmt.Sprintf("%s\x00%d\x00%s\x00%d\x00%s\x00%s\x00%s\x00%s\x00%s", l.Consumer, l.ConsumerPid, l.Provider,
		l.ProviderPid, l.Name, l.Type, l.Role, l.Target, l.Socket)
}

// Reconcile makes the injected resources those of links: links gone are
// removed first (their sockets unlinked, connections closed), then new
// ones are injected. It returns the errors of links it could not inject;
// they are tried again on the next call.
func (m *Mesh) Reconcile(links []ctrl.XConnectLink) error {
	want := map[string]ctrl.XConnectLink{}
	for _, l := range links {
		want[key(l)] = l
	}
	for k, in := range m.active {
		if _, ok := want[k]; !ok {
			m.remove(in)
			delete(m.active, k)
		}
	}
	var errs []error
	// In the graph's order: the same failures read the same each time.
	for _, l := range links {
		k := key(l)
		if _, todo := want[k]; !todo || m.active[k] != nil {
			continue
		}
		delete(want, k) // a link listed twice is tried once
		p := plugins[l.Type]
		if p == nil && l.Type != "dbus" && l.Type != "drm" {
			if !m.skipped[k] {
				m.skipped[k] = true
				m.log.Warn("xconnect: link type not supported by this pv-xconnect", "consumer", l.Consumer, "name", l.Name, "type", l.Type)
			}
			continue
		}
		in, err := m.inject(l, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("link %s→%s %s: %w", l.Provider, l.Consumer, l.Name, err))
			continue
		}
		m.active[k] = in
		m.log.Info("xconnect: link added", "consumer", l.Consumer, "provider", l.Provider, "name", l.Name, "type", l.Type, "target", l.Target)
	}
	return errors.Join(errs...)
}

// Active returns the links injected now.
func (m *Mesh) Active() []ctrl.XConnectLink {
	var out []ctrl.XConnectLink
	for _, in := range m.active {
		out = append(out, in.link)
	}
	return out
}

// Close removes every injected resource.
func (m *Mesh) Close() {
	for k, in := range m.active {
		m.remove(in)
		delete(m.active, k)
	}
}

// inject listens on l's target inside the consumer's root and serves it
// with p (or with proxyDBus for dbus); a drm link's target is a device
// node instead (injectNode).
func (m *Mesh) inject(l ctrl.XConnectLink, p plugin) (*injected, error) {
	if l.ConsumerPid <= 0 || l.ProviderPid <= 0 || !path.IsAbs(l.Target) || !path.IsAbs(l.Socket) {
		return nil, fmt.Errorf("bad link: pids %d/%d, target %q, socket %q", l.ConsumerPid, l.ProviderPid, l.Target, l.Socket)
	}
	root, err := openRoot(m.procRoot, l.ConsumerPid)
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	target := path.Clean(l.Target)
	dir, err := openDir(root, path.Dir(target), true)
	if err != nil {
		return nil, err
	}
	base := path.Base(target)
	if l.Type == "drm" {
		rdev, err := m.injectNode(l, dir, base)
		if err != nil {
			unix.Close(dir)
			return nil, err
		}
		cg, granted, err := m.allowDevice(l.ConsumerPid, rdev)
		if err == nil && cg == "" {
			err = m.checkOpen(l.ConsumerPid, rdev, dir, base)
		}
		if err != nil {
			_ = unix.Unlinkat(dir, base, 0)
			unix.Close(dir)
			return nil, fmt.Errorf("allow the device in the consumer's cgroup: %w", err)
		}
		return &injected{link: l, dir: dir, base: base, rdev: rdev, devCg: cg, granted: granted}, nil
	}
	if err := clearStale(dir, base, unix.S_IFSOCK, errNotSocket); err != nil {
		unix.Close(dir)
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: fdPath(dir, base), Net: "unix"})
	if err != nil {
		unix.Close(dir)
		return nil, err
	}
	// The path names the directory by an fd number that means nothing once
	// closed: remove() unlinks through the fd instead.
	ln.SetUnlinkOnClose(false)
	// Any user of the consumer may connect: the link, not the file mode,
	// is the grant.
	if err := unix.Fchmodat(dir, base, 0o666, 0); err != nil {
		ln.Close()
		_ = unix.Unlinkat(dir, base, 0)
		unix.Close(dir)
		return nil, err
	}
	in := &injected{link: l, ln: ln, dir: dir, base: base, conns: map[net.Conn]bool{}, done: make(chan struct{})}
	log := m.log.With("consumer", l.Consumer, "provider", l.Provider, "name", l.Name)
	serve := func(c *net.UnixConn) { p(l, c, func() (*net.UnixConn, error) { return m.dialProvider(l) }, log) }
	if l.Type == "dbus" {
		serve = func(c *net.UnixConn) {
			proxyDBus(c, func() (*net.UnixConn, uint32, error) {
				pc, id, err := m.dialRole(l)
				if err == nil && !id.found {
					log.Info("xconnect: dbus: role not in the provider's /etc/passwd, masquerading as nobody", "role", l.Role)
				}
				return pc, id.uid, err
			}, log)
		}
	}
	go in.serve(serve, log)
	return in, nil
}

// dialProvider connects to the provider's socket, resolved inside its
// root at every dial (the provider may recreate it).
func (m *Mesh) dialProvider(l ctrl.XConnectLink) (*net.UnixConn, error) {
	dir, base, err := m.providerDir(l)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	return net.DialUnix("unix", nil, &net.UnixAddr{Name: fdPath(dir, base), Net: "unix"})
}

// serve accepts consumer connections until the listener closes.
func (in *injected) serve(serve func(*net.UnixConn), log *slog.Logger) {
	defer close(in.done)
	for {
		c, err := in.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Warn("xconnect: accept", "err", err)
			}
			return
		}
		in.mu.Lock()
		in.conns[c] = true
		in.mu.Unlock()
		go func() {
			defer func() {
				c.Close()
				in.mu.Lock()
				delete(in.conns, c)
				in.mu.Unlock()
			}()
			serve(c)
		}()
	}
}

// remove closes the listener and the link's connections and unlinks its
// socket from the consumer's namespace (gone already if the consumer is).
func (m *Mesh) remove(in *injected) {
	if in.ln != nil {
		in.ln.Close()
		<-in.done
		in.mu.Lock()
		for c := range in.conns {
			c.Close()
		}
		in.mu.Unlock()
	}
	if in.granted {
		m.revoke(in)
	}
	if err := m.unlinkTarget(in); err != nil && !errors.Is(err, unix.ENOENT) {
		m.log.Debug("xconnect: unlink", "target", in.link.Target, "err", err)
	}
	unix.Close(in.dir)
	m.log.Info("xconnect: link removed", "consumer", in.link.Consumer, "provider", in.link.Provider, "name", in.link.Name)
}

// revoke takes back the device in granted in its consumer's cgroup, unless
// another link of that cgroup injects the same device: that one holds the
// grant then. A cgroup gone with its consumer is not an error.
func (m *Mesh) revoke(in *injected) {
	for _, o := range m.active {
		if o != in && o.devCg == in.devCg && o.rdev == in.rdev {
			o.granted = true
			return
		}
	}
	if err := revokeDevice(in.devCg, in.rdev); err != nil && !errors.Is(err, unix.ENOENT) {
		m.log.Debug("xconnect: revoke device", "cgroup", in.devCg, "err", err)
	}
}
