package logserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Socket names below Options.RunDir.
const (
	CtrlSocket = "pv-ctrl-log"
	FdSocket   = "pv-fd-log"
)

// Defaults of Options.
const (
	DefaultQueueLen      = 1024
	DefaultMaxLine       = 4096
	DefaultMaxFrame      = 64 << 10
	DefaultMaxConns      = 256
	DefaultUpdateMaxSize = 64 << 10
)

// Errors of the server.
var (
	ErrClosed      = errors.New("log server closed")
	ErrSocketInUse = errors.New("log socket in use by a running server")
)

// Options configures a Server. Zero values take the documented defaults.
type Options struct {
	RunDir string // PV_SYSTEM_RUNDIR: sockets go here; "" = no sockets
	// DevLog, when set (embedded: "/dev/log"), is made a symlink to the
	// pv-ctrl-log socket by Start.
	DevLog string
	LogDir string // PV_LOG_DIR, e.g. /storage/logs
	// TrailsDir receives the update capture (trails/<rev>/.pv/logs);
	// "" = <LogDir>/../trails.
	TrailsDir string
	Rev       string   // running revision (logs/<rev>); "" = "0"
	Outputs   []string // PV_LOG_SERVER_OUTPUTS; nil = [filetree]
	// MaxSize is PV_LOG_DIR_MAXSIZE in bytes; 0 = auto (10% of the
	// partition, 100% on tmpfs). Use ResolveDirMaxSize for strings.
	MaxSize          int64
	HysteresisFactor int // PV_LOG_HYSTERESIS_FACTOR, default 4
	RotateFactor     int // PV_LOG_ROTATE_FACTOR, default 5
	Level            int // PV_LOG_LEVEL: messages above it are dropped
	// TimestampFormat is the default "ts" format of every output;
	// TimestampFormats overrides it per output ("filetree", "singlefile",
	// "stdout"). Values as ParseTimeFormat.
	TimestampFormat  string
	TimestampFormats map[string]string
	Absolute         bool      // PV_LOG_TIMESTAMP=absolute: tsec since the epoch
	BootTime         time.Time // zero = now - CLOCK_BOOTTIME
	Now              func() time.Time
	Stdout           io.Writer // stdout outputs; nil = os.Stdout
	Log              *slog.Logger
	// MainPID may send CMD frames; 0 = this process.
	MainPID int32
	// Platform resolves a sender PID to its platform for the RFC, JSON and
	// KV protocols; nil = from /proc/<pid>/cgroup.
	Platform      func(pid int32) string
	QueueLen      int   // records per output queue
	MaxLine       int   // longest text message / line, longer ones are cut
	MaxFrame      int   // largest binary frame payload
	MaxConns      int   // concurrent pv-ctrl-log/pv-fd-log clients
	UpdateMaxSize int64 // cap of .pv/logs.tmp
	// Tap, when set, also gets every message kept by PV_LOG_LEVEL with
	// the revision it belongs to (the Hub log push). It is called by the
	// producers' goroutines and must never block.
	Tap func(e Entry, rev string)
}

// Stats counts what the server did with the messages it got.
type Stats struct {
	Dropped   uint64 // lost because an output queue was full
	Written   uint64 // records handed to outputs
	Filtered  uint64 // above PV_LOG_LEVEL
	Bad       uint64 // unparsable messages or frames
	Truncated uint64 // cut at MaxLine
	Rotated   uint64 // files gzipped
	Deleted   uint64 // .gz files removed by cleanup
	Capped    uint64 // update capture lines over UpdateMaxSize
	WriteErrs uint64 // failed log file writes
}

// Server is a running log server. Its methods are safe for concurrent use.
type Server struct {
	o         Options
	log       *slog.Logger
	level     Level
	clock     clock
	tf        map[string]TimeFormat
	budget    Budget
	trailsDir string
	stdout    io.Writer
	resolve   func(pid int32) string
	now       func() time.Time

	rev       atomic.Pointer[string]
	updateRev atomic.Pointer[string]

	maint    *maintainer
	sinks    []*sink
	upd      *update
	updK     *sink
	direct   bool // stdout_direct
	stdoutOn bool

	filtered, bad, truncated, updateCapped, writeErrs atomic.Uint64

	closed  atomic.Bool
	closeMu sync.Mutex
	cancel  context.CancelFunc
	lns     []net.Listener
	wg      sync.WaitGroup
	conns   chan struct{} // semaphore
	subsMu  sync.Mutex
	subs    map[string]*subscription
}

// New validates o and starts the outputs; Write works from here on.
// Start opens the sockets.
func New(o Options) (*Server, error) {
	if o.LogDir == "" {
		return nil, errors.New("log server: LogDir: required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Rev == "" {
		o.Rev = "0"
	}
	if o.Outputs == nil {
		o.Outputs = []string{OutFiletree}
	}
	if o.Level < int(Fatal) || o.Level > int(All) {
		return nil, fmt.Errorf("log server: Level %d: out of range 0..5", o.Level)
	}
	setDefault(&o.QueueLen, DefaultQueueLen)
	setDefault(&o.MaxLine, DefaultMaxLine)
	setDefault(&o.MaxFrame, DefaultMaxFrame)
	setDefault(&o.MaxConns, DefaultMaxConns)
	if o.UpdateMaxSize <= 0 {
		o.UpdateMaxSize = DefaultUpdateMaxSize
	}
	if o.MainPID == 0 {
		o.MainPID = int32(os.Getpid())
	}
	s := &Server{o: o, log: o.Log, level: Level(o.Level), tf: map[string]TimeFormat{},
		stdout: o.Stdout, resolve: o.Platform, now: o.Now, trailsDir: o.TrailsDir,
		subs: map[string]*subscription{}, conns: make(chan struct{}, o.MaxConns)}
	if s.stdout == nil {
		s.stdout = os.Stdout
	}
	s.stdout = &lockedWriter{w: s.stdout}
	if s.now == nil {
		s.now = time.Now
	}
	if s.resolve == nil {
		s.resolve = cgroupResolver("/proc", o.MainPID)
	}
	if s.trailsDir == "" {
		s.trailsDir = filepath.Join(filepath.Dir(filepath.Clean(o.LogDir)), "trails")
	}
	boot := o.BootTime
	if boot.IsZero() {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err == nil {
			boot = s.now().Add(-time.Duration(ts.Nano()))
		} else {
			boot = s.now()
		}
	}
	s.clock = clock{boot: boot, absolute: o.Absolute}
	for _, name := range []string{OutFiletree, OutSinglefile, OutStdout} {
		v := o.TimestampFormat
		if f, ok := o.TimestampFormats[name]; ok {
			v = f
		}
		tf, err := ParseTimeFormat(v)
		if err != nil {
			return nil, fmt.Errorf("log server: %s timestamp: %w", name, err)
		}
		s.tf[name] = tf
	}
	max := o.MaxSize
	if max <= 0 {
		part, err := PartitionOf(o.LogDir)
		if err != nil {
			return nil, fmt.Errorf("log server: max size: %w", err)
		}
		max = AutoDirMaxSize(part)
	}
	s.budget = NewBudget(max, o.HysteresisFactor, o.RotateFactor)
	seen := map[string]bool{}
	for _, name := range o.Outputs {
		if seen[name] {
			continue
		}
		seen[name] = true
		switch name {
		case OutStdoutDirect:
			s.direct = true
			continue
		case OutNullsink:
			continue
		case OutStdout:
			s.stdoutOn = true
		}
		if _, ok := outputs[name]; !ok {
			return nil, fmt.Errorf("log server: %w %q", ErrUnknownOutput, name)
		}
	}
	rev := o.Rev
	s.rev.Store(&rev)
	none := ""
	s.updateRev.Store(&none)
	s.maint = newMaintainer(o.LogDir, s.budget, o.Log)
	for _, name := range o.Outputs {
		if f, ok := outputs[name]; ok && !s.hasSink(name) {
			s.sinks = append(s.sinks, startSink(name, f(s), o.QueueLen))
		}
	}
	s.upd = newUpdate(s)
	s.updK = startSink("update", s.upd, o.QueueLen)
	s.sinks = append(s.sinks, s.updK)
	s.linkCurrent(rev)
	return s, nil
}

func setDefault(v *int, d int) {
	if *v <= 0 {
		*v = d
	}
}

func (s *Server) hasSink(name string) bool {
	for _, k := range s.sinks {
		if k.name == name {
			return true
		}
	}
	return false
}

// Budget returns the size limits in force.
func (s *Server) Budget() Budget { return s.budget }

// Start listens on $RUN/pv-ctrl-log and $RUN/pv-fd-log (when RunDir is
// set) until ctx ends or Close.
func (s *Server) Start(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.o.RunDir == "" {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	ctrl, err := listenUnix(filepath.Join(s.o.RunDir, CtrlSocket))
	if err != nil {
		cancel()
		return err
	}
	fd, err := listenUnix(filepath.Join(s.o.RunDir, FdSocket))
	if err != nil {
		ctrl.Close()
		cancel()
		return err
	}
	if s.o.DevLog != "" {
		if err := linkDevLog(s.o.DevLog, filepath.Join(s.o.RunDir, CtrlSocket)); err != nil {
			ctrl.Close()
			fd.Close()
			cancel()
			return err
		}
	}
	// Checked again under closeMu: a Close that ran since the first check
	// has no cancel to call and may already be in wg.Wait.
	s.closeMu.Lock()
	if s.closed.Load() {
		s.closeMu.Unlock()
		ctrl.Close()
		fd.Close()
		cancel()
		return ErrClosed
	}
	s.cancel = cancel
	s.lns = append(s.lns, ctrl, fd)
	s.wg.Add(3)
	s.closeMu.Unlock()
	go s.acceptLoop(ctx, ctrl, s.serveCtrl)
	go s.acceptLoop(ctx, fd, s.serveFd)
	go func() {
		defer s.wg.Done()
		<-ctx.Done()
		ctrl.Close()
		fd.Close()
	}()
	return nil
}

// listenUnix listens on a stream socket, replacing a stale one: an
// existing socket that still answers belongs to a running server.
func listenUnix(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen %s: %w", path, ErrSocketInUse)
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return ln, nil
}

// linkDevLog replaces path (a symlink, socket or nothing) with a symlink
// to target.
func linkDevLog(path, target string) error {
	if st, err := os.Lstat(path); err == nil && st.Mode()&(os.ModeSymlink|os.ModeSocket) == 0 {
		return fmt.Errorf("link %s: %w", path, os.ErrExist)
	}
	tmp := path + ".pvtmp"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s: %w", path, err)
	}
	return nil
}

func (s *Server) acceptLoop(ctx context.Context, ln *net.UnixListener, serve func(context.Context, *net.UnixConn)) {
	defer s.wg.Done()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("log socket accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case s.conns <- struct{}{}:
		default:
			s.bad.Add(1)
			c.Close() // too many clients
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.conns }()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			defer c.Close()
			serve(ctx, c)
		}()
	}
}

// Close stops the sockets and subscriptions, then flushes and closes the
// outputs. Later Writes of pantavisor messages go to stdout directly when a
// stdout output is configured (FATAL ones always).
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.closeMu.Lock()
	if s.cancel != nil {
		s.cancel()
	}
	s.closeMu.Unlock()
	s.subsMu.Lock()
	for k, sub := range s.subs {
		sub.stop()
		delete(s.subs, k)
	}
	s.subsMu.Unlock()
	s.wg.Wait()
	for _, k := range s.sinks {
		k.stop()
	}
	s.maint.close()
	return nil
}

// Write logs an in-process message. An empty platform means pantavisor.
// It never blocks on outputs, except stdout_direct, which writes
// pantavisor's messages synchronously.
func (s *Server) Write(e Entry) {
	if e.Platform == "" {
		e.Platform = PlatformPantavisor
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Level = e.Level.clamp()
	if e.Platform == PlatformPantavisor {
		closed := s.closed.Load()
		if (s.direct && e.Level <= s.level) || (closed && (e.Level == Fatal || s.stdoutOn && e.Level <= s.level)) {
			s.writeDirect(&e)
		}
	}
	s.dispatch(e)
}

// writeDirect prints one pantavisor message to stdout synchronously.
func (s *Server) writeDirect(e *Entry) {
	r := &record{Entry: *e}
	var b []byte
	b = appendPVLines(b, s.clock, s.tf[OutStdout], r)
	s.stdout.Write(b)
}

// lockedWriter serialises the stdout output and stdout_direct writes.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// dispatch stamps e and offers it to every output.
func (s *Server) dispatch(e Entry) {
	if s.closed.Load() {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Level = e.Level.clamp()
	upd := *s.updateRev.Load()
	if e.Level > s.level && (upd == "" || e.Level > Error) {
		s.filtered.Add(1)
		return
	}
	if len(e.Msg) > s.o.MaxLine*4 {
		e.Msg = e.Msg[:s.o.MaxLine*4]
		s.truncated.Add(1)
	}
	if len(e.Platform) > 64 {
		e.Platform = e.Platform[:64]
	}
	if len(e.Source) > 256 {
		e.Source = e.Source[:256]
	}
	r := &record{Entry: e, rev: *s.rev.Load(), update: upd}
	for _, k := range s.sinks {
		k.offer(r)
	}
	if s.o.Tap != nil && e.Level <= s.level {
		s.o.Tap(e, r.rev)
	}
}

// SetRevision makes later messages go to logs/<rev> and points
// logs/current at it.
func (s *Server) SetRevision(rev string) {
	if rev == "" {
		return
	}
	s.rev.Store(&rev)
	s.linkCurrent(rev)
}

// Revision returns the revision logs are written for.
func (s *Server) Revision() string { return *s.rev.Load() }

// linkCurrent atomically points <LogDir>/current at rev.
func (s *Server) linkCurrent(rev string) {
	if err := os.MkdirAll(s.o.LogDir, 0o755); err != nil {
		s.log.Warn("log dir", "dir", s.o.LogDir, "err", err)
		return
	}
	cur := filepath.Join(s.o.LogDir, "current")
	tmp := cur + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(safeRel(rev), tmp); err != nil {
		s.log.Warn("log current link", "err", err)
		return
	}
	if err := os.Rename(tmp, cur); err != nil {
		os.Remove(tmp)
		s.log.Warn("log current link", "err", err)
	}
}

// StartUpdate captures messages of level <= ERROR into
// trails/<rev>/.pv/logs.tmp until StopUpdate. A running capture of another
// revision is finished first.
func (s *Server) StartUpdate(rev string) {
	if rev == "" || s.closed.Load() {
		return
	}
	old := *s.updateRev.Swap(&rev)
	s.updK.control(func() {
		if old != "" && old != rev {
			s.upd.finish(old)
		}
		s.upd.begin(rev)
	})
}

// StopUpdate ends the capture: logs.tmp is renamed to .pv/logs once the
// messages queued before the call are written.
func (s *Server) StopUpdate() {
	none := ""
	old := *s.updateRev.Swap(&none)
	if old == "" {
		return
	}
	s.updK.control(func() { s.upd.finish(old) })
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Filtered:  s.filtered.Load(),
		Bad:       s.bad.Load(),
		Truncated: s.truncated.Load(),
		Capped:    s.updateCapped.Load(),
		Rotated:   s.maint.rotated.Load(),
		Deleted:   s.maint.deleted.Load(),
		WriteErrs: s.writeErrs.Load(),
	}
	for _, k := range s.sinks {
		st.Dropped += k.dropped.Load()
		st.Written += k.written.Load()
	}
	return st
}

// Sync waits until every output has written and flushed what was queued
// before the call, and the rotations it caused are compressed.
func (s *Server) Sync() {
	for _, k := range s.sinks {
		k.control(func() { k.out.flush() })
	}
	s.maint.wait()
}
