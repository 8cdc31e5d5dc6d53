// Package sshd is Pantavisor's debug ssh server on port 8222 (upstream:
// dropbear with fallbear-cmd). The login name picks where the session
// runs: "/" (or "_pv_", upstream pvtest's) is the host's debug shell,
// any other name is the container of that name, entered through pventer:
//
//	ssh -p 8222 /@<ip>                        host shell
//	ssh -p 8222 -l/ <ip> cat /storage/corepv  host command
//	ssh -p 8222 <container>@<ip>              shell in the container
//	scp -P 8222 /@<ip>:/storage/file .        SFTP, or scp -O (host only)
//
// Only public keys log in (authorized_keys text, read at every login so a
// user-meta change applies at once); no passwords. Connections, logins in
// progress (overall and per remote host) and sessions per connection are
// bounded, and a login must finish within HandshakeTimeout, so a flood
// cannot exhaust the daemon.
//
//	srv, err := sshd.Listen(sshd.Options{Addr: ":8222", HostKeyDir: dir,
//		AuthorizedKeys: read, Enter: enter, Log: log})
//	go srv.Serve()
//	defer srv.Close()
package sshd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults of Options.
const (
	DefaultAddr        = ":8222"
	DefaultMaxConns    = 16
	DefaultMaxPending  = 8
	DefaultMaxPerHost  = 3
	DefaultMaxSessions = 4
	HandshakeTimeout   = 20 * time.Second
)

// HostUsers are the login names of the host's debug shell.
var HostUsers = []string{"/", "_pv_"}

// ErrNoContainer is returned by an Enter function for a name that is not a
// running container; the client sees its message.
var ErrNoContainer = errors.New("no such container")

// Options configure a Server.
type Options struct {
	Addr       string // listen address; DefaultAddr when empty
	HostKeyDir string // keeps HostKeyFile (PV_DROPBEAR_CACHE_DIR)
	// AuthorizedKeys returns the authorized_keys text, read at each login
	// attempt (nil or empty: nobody logs in).
	AuthorizedKeys func() ([]byte, error)
	// Enter builds the process running argv inside the named container;
	// nil: container logins are refused.
	Enter func(container string, argv []string) (*exec.Cmd, error)
	Shell string   // the host's shell; "/bin/sh" when empty
	Env   []string // environment of host sessions (TERM is added)

	MaxConns   int // connections at once; DefaultMaxConns when 0
	MaxPending int // connections still logging in; DefaultMaxPending when 0
	// MaxPerHost bounds the logins in progress from one address, so a
	// single host cannot take every MaxPending slot; DefaultMaxPerHost
	// when 0.
	MaxPerHost  int
	MaxSessions int // sessions per connection; DefaultMaxSessions when 0

	Log *slog.Logger
}

// Server is a running debug ssh server.
type Server struct {
	o       Options
	ln      net.Listener
	cfg     *ssh.ServerConfig
	conns   chan struct{} // semaphore: open connections
	pending chan struct{} // semaphore: connections in their handshake
	log     *slog.Logger

	mu      sync.Mutex
	open    map[net.Conn]struct{}
	perHost map[string]int // logins in progress by remote address
	closed  bool
	wg      sync.WaitGroup
}

// Listen loads (or makes) the host key and binds the listen address.
func Listen(o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Shell == "" {
		o.Shell = "/bin/sh"
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxPerHost <= 0 {
		o.MaxPerHost = DefaultMaxPerHost
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o, log: log, conns: make(chan struct{}, o.MaxConns),
		pending: make(chan struct{}, o.MaxPending), open: map[net.Conn]struct{}{}, perHost: map[string]int{}}
	key, err := loadHostKey(o.HostKeyDir, log)
	if err != nil {
		return nil, fmt.Errorf("ssh: %w", err)
	}
	s.cfg = &ssh.ServerConfig{
		PublicKeyCallback: s.checkKey,
		MaxAuthTries:      6,
		ServerVersion:     "SSH-2.0-pantavisor",
	}
	s.cfg.AddHostKey(key)
	if s.ln, err = net.Listen("tcp", o.Addr); err != nil {
		return nil, fmt.Errorf("ssh: %w", err)
	}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close; it returns nil after Close.
func (s *Server) Serve() error {
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("ssh: accept: %w", err)
			}
			// Out of descriptors and the like: back off and go on, as
			// net/http does; the server must outlive a burst.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("ssh: accept", "err", err, "retry in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		select {
		case s.conns <- struct{}{}:
		default:
			s.log.Warn("ssh: too many connections: refused", "remote", c.RemoteAddr(), "max", s.o.MaxConns)
			c.Close()
			continue
		}
		select {
		case s.pending <- struct{}{}:
		default:
			<-s.conns
			s.log.Warn("ssh: too many logins in progress: refused", "remote", c.RemoteAddr(), "max", s.o.MaxPending)
			c.Close()
			continue
		}
		host := remoteHost(c)
		ok, closed := s.track(c, host)
		if !ok {
			<-s.pending
			<-s.conns
			c.Close()
			if closed {
				return nil
			}
			s.log.Warn("ssh: too many logins in progress from one host: refused", "remote", c.RemoteAddr(), "max", s.o.MaxPerHost)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.conns }()
			defer s.untrack(c)
			s.serveConn(c, host)
		}()
	}
}

// Close stops accepting, hangs up every connection (their processes are
// killed) and waits for the connection goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// track registers a new connection, counting it as a login in progress
// of host; ok is false when the server is closed or host has too many.
func (s *Server) track(c net.Conn, host string) (ok, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, true
	}
	if s.perHost[host] >= s.o.MaxPerHost {
		return false, false
	}
	s.perHost[host]++
	s.open[c] = struct{}{}
	return true, false
}

// loggedIn ends the login in progress of host (whatever its outcome).
func (s *Server) loggedIn(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perHost[host]--; s.perHost[host] <= 0 {
		delete(s.perHost, host)
	}
}

// remoteHost is the IP of a connection's peer.
func remoteHost(c net.Conn) string {
	h, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return h
}

func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
}

// checkKey accepts a key listed in the authorized keys.
func (s *Server) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if s.o.AuthorizedKeys == nil {
		return nil, errors.New("no authorized keys")
	}
	text, err := s.o.AuthorizedKeys()
	if err != nil {
		s.log.Warn("ssh: authorized keys", "err", err)
		return nil, errors.New("no authorized keys")
	}
	if len(text) > maxKeysSize {
		text = text[:maxKeysSize]
	}
	keys, _ := ParseAuthorizedKeys(text)
	want := key.Marshal()
	for _, k := range keys {
		if bytes.Equal(k.Marshal(), want) {
			return &ssh.Permissions{}, nil
		}
	}
	s.log.Info("ssh: key refused", "user", meta.User(), "remote", meta.RemoteAddr(), "key", ssh.FingerprintSHA256(key))
	return nil, errors.New("key not authorized")
}

// serveConn runs one connection: the handshake within HandshakeTimeout,
// then its channels.
func (s *Server) serveConn(c net.Conn, host string) {
	_ = c.SetDeadline(time.Now().Add(HandshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	s.loggedIn(host)
	<-s.pending
	if err != nil {
		s.log.Debug("ssh: handshake", "remote", c.RemoteAddr(), "err", err)
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	s.log.Info("ssh: login", "user", sc.User(), "remote", sc.RemoteAddr())
	go ssh.DiscardRequests(reqs) // no port forwarding, no keepalive replies needed
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sessions := make(chan struct{}, s.o.MaxSessions)
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions are served")
			continue
		}
		select {
		case sessions <- struct{}{}:
		default:
			_ = nc.Reject(ssh.ResourceShortage, "too many sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			<-sessions
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sessions }()
			(&session{srv: s, user: sc.User(), ch: ch}).serve(ctx, creqs)
		}()
	}
	cancel() // the connection is gone: end its processes
	wg.Wait()
}
