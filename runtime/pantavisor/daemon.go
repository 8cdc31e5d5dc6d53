package pantavisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
)

// Daemon is one pantavisor instance.
type Daemon struct {
	opt   Options
	log   *slog.Logger
	clock Clock
	mode  Mode

	conf    *conf
	store   *store
	usrmeta *metaStore
	devmeta *metaStore
	logs    LogServer
	ln      net.Listener
	srv     *http.Server

	runDir string
	rev    string // pv_rev: the running revision
	try    string // pv_try

	cmds  chan ctrl.Command
	ready chan struct{}

	mu       sync.Mutex
	current  *revision
	state    State
	goRemote bool
}

// New parses the options; the work happens in Run.
func New(o Options) (*Daemon, error) {
	d := &Daemon{opt: o, log: o.Log, clock: o.Clock,
		cmds: make(chan ctrl.Command, 1), ready: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.clock == nil {
		d.clock = realClock{}
	}
	if o.Cmdline == "" {
		if b, err := os.ReadFile("/proc/cmdline"); err == nil {
			d.opt.Cmdline = strings.TrimSpace(string(b))
		}
	}
	d.rev = "0"
	for _, w := range strings.Fields(d.opt.Cmdline) {
		k, v, _ := strings.Cut(w, "=")
		switch k {
		case "pv_rev":
			if v != "" {
				d.rev = v
			}
		case "pv_try":
			d.try = v
		}
	}
	if err := ctrl.ValidRevision(d.rev); err != nil {
		return nil, fmt.Errorf("pv_rev: %w", err)
	}
	if d.try != "" {
		if err := ctrl.ValidRevision(d.try); err != nil {
			return nil, fmt.Errorf("pv_try: %w", err)
		}
	}
	return d, nil
}

// Ready is closed once INIT and RUN are done and the FSM is waiting.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Mode returns the init mode (known after INIT).
func (d *Daemon) Mode() Mode { return d.mode }

// Socket returns the control socket path (known after INIT).
func (d *Daemon) Socket() string { return filepath.Join(d.runDir, "pv-ctrl") }

// Revision returns the running revision.
func (d *Daemon) Revision() string { return d.rev }

// modeFromCmdline returns the mode forced by a pv_<mode> word.
func modeFromCmdline(cmdline string) (Mode, bool) {
	for _, w := range strings.Fields(cmdline) {
		switch w {
		case "pv_embedded":
			return Embedded, true
		case "pv_standalone":
			return Standalone, true
		case "pv_appengine":
			return AppEngine, true
		}
	}
	return "", false
}

// init is FSM INIT: config, mode, storage, run dir, logserver, metadata
// and the control socket.
func (d *Daemon) init(ctx context.Context) error {
	c, err := loadConf(d.opt.ConfigFile, d.opt.Cmdline, d.opt.Env)
	if err != nil {
		return err
	}
	d.conf = c
	if m, ok := modeFromCmdline(d.opt.Cmdline); ok {
		d.mode = m
	} else if d.mode, err = ParseMode(c.Get("PV_SYSTEM_INIT_MODE")); err != nil {
		return fmt.Errorf("PV_SYSTEM_INIT_MODE: %w", err)
	}
	d.runDir = c.Get("PV_SYSTEM_RUNDIR")
	if d.mode == AppEngine && c.level("PV_SYSTEM_RUNDIR") == lvlDefault {
		d.runDir = "/run/pantavisor/pv"
	}
	root := c.Get("PV_STORAGE_MNTPOINT")
	d.log.Info("init", "mode", d.mode, "storage", root, "run", d.runDir, "rev", d.rev, "try", d.try)

	if d.store, err = openStore(root); err != nil {
		return err
	}
	d.store.validate = func(b []byte) error {
		_, err := parseRevision("", b, d.mode == AppEngine)
		return err
	}
	d.store.keep = d.gcKeep
	if d.opt.FreeSpace != nil {
		d.store.free = d.opt.FreeSpace
	} else {
		reserved := c.Get("PV_STORAGE_GC_RESERVED")
		pct := 0
		fmt.Sscan(reserved, &pct)
		d.store.free = func() (int64, error) { return statfsFree(root, pct) }
	}
	if err := os.MkdirAll(d.runDir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	for _, hint := range []string{"challenge", "device-id", "pantahub-host"} {
		p := filepath.Join(d.runDir, hint)
		if _, err := os.Stat(p); err != nil {
			if err := os.WriteFile(p, nil, 0o444); err != nil {
				return fmt.Errorf("run dir: %w", err)
			}
		}
	}
	logDir := c.storagePath("PV_LOG_DIR")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	if d.opt.LogServer != nil {
		ls, err := d.opt.LogServer(d.runDir, logDir, d.rev, d.log)
		if err != nil {
			return fmt.Errorf("logserver: %w", err)
		}
		if err := ls.Start(ctx); err != nil {
			return fmt.Errorf("logserver: %w", err)
		}
		d.logs = ls
	}
	if d.usrmeta, err = openMeta(c.storagePath("PV_CACHE_USRMETADIR")); err != nil {
		return err
	}
	if d.devmeta, err = openMeta(c.storagePath("PV_CACHE_DEVMETADIR")); err != nil {
		return err
	}
	return d.startCtrl()
}

// startCtrl listens on $RUN/pv-ctrl and serves the control API.
func (d *Daemon) startCtrl() error {
	o := ctrl.Options{
		Log:        d.log,
		UserMeta:   userMeta{d},
		DeviceMeta: d.devmeta,
		Steps:      d.store,
		Objects:    objectsAPI{d.store},
		Config:     d.conf,
		Commands:   d,
		Platforms:  d,
		BuildInfo:  d.opt.BuildInfo,
		AppEngine:  d.mode == AppEngine,
		ProcRoot:   d.opt.ProcRoot,
	}
	if d.opt.Platforms != nil {
		o.Containers = d.opt.Platforms
	}
	ln, err := ctrl.Listen(d.Socket())
	if err != nil {
		return fmt.Errorf("ctrl: %w", err)
	}
	d.ln = ln
	d.srv = ctrl.NewServer(ctrl.New(o))
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("ctrl: serve", "err", err)
		}
	}()
	return nil
}

// userMeta applies user-meta keys that are config keys at the metadata
// level, and reverts them on delete.
type userMeta struct{ d *Daemon }

func (u userMeta) Set(key string, value []byte) error {
	if err := u.d.usrmeta.Set(key, value); err != nil {
		return err
	}
	u.d.conf.set(key, string(value), lvlMetadata)
	return nil
}

func (u userMeta) Delete(key string) error {
	if err := u.d.usrmeta.Delete(key); err != nil {
		return err
	}
	u.d.conf.unset(key, lvlMetadata)
	return nil
}

func (u userMeta) MarshalJSON() ([]byte, error) { return u.d.usrmeta.MarshalJSON() }

// Caller implements ctrl.Platforms over the running revision.
func (d *Daemon) Caller(name string) (known, mgmt bool) {
	d.mu.Lock()
	cur := d.current
	d.mu.Unlock()
	if cur == nil {
		return false, false
	}
	return cur.Caller(name)
}

// gcKeep lists the revisions GC keeps (spec §12).
func (d *Daemon) gcKeep() []string {
	keep := []string{d.rev}
	if d.try != "" {
		keep = append(keep, d.try)
	}
	if d.conf.Bool("PV_STORAGE_GC_KEEP_FACTORY") {
		keep = append(keep, "0")
	}
	return keep
}

// local reports whether the device is in local mode (spec §1 RUN 8).
func (d *Daemon) local() bool {
	if !d.conf.Bool("PV_CONTROL_REMOTE") {
		return true
	}
	d.mu.Lock()
	goRemote := d.goRemote
	d.mu.Unlock()
	if goRemote || d.conf.Bool("PV_CONTROL_REMOTE_ALWAYS") {
		return false
	}
	return strings.HasPrefix(d.rev, "locals/")
}

// publishDevmeta writes the pantavisor.* device metadata.
func (d *Daemon) publishDevmeta() {
	set := func(k, v string) {
		if err := d.devmeta.Set(k, []byte(v)); err != nil {
			d.log.Warn("devmeta", "key", k, "err", err)
		}
	}
	mode := "remote"
	if d.local() {
		mode = "local"
	}
	set("pantavisor.arch", archName())
	if d.opt.Version != "" {
		set("pantavisor.version", d.opt.Version)
	}
	set("pantavisor.revision", d.rev)
	set("pantavisor.mode", mode)
	set("pantavisor.status", d.State().String())
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		b, _ := json.Marshal(map[string]string{
			"kernel.name": cstr(u.Sysname[:]), "kernel.release": cstr(u.Release[:]),
			"kernel.version": cstr(u.Version[:]), "node.name": cstr(u.Nodename[:]),
			"machine": cstr(u.Machine[:]),
		})
		set("pantavisor.uname", string(b))
	}
	if free, err := statfsFree(d.store.root, 0); err == nil {
		var st syscall.Statfs_t
		if syscall.Statfs(d.store.root, &st) == nil {
			total := int64(st.Blocks) * st.Bsize
			pct := 0
			fmt.Sscan(d.conf.Get("PV_STORAGE_GC_RESERVED"), &pct)
			reserved := total * int64(pct) / 100
			b, _ := json.Marshal(map[string]string{"total": fmt.Sprint(total), "free": fmt.Sprint(free),
				"reserved": fmt.Sprint(reserved), "real_free": fmt.Sprint(max(free-reserved, 0))})
			set("storage", string(b))
		}
	}
}

func cstr[T int8 | uint8](b []T) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// archName is pantavisor.arch in upstream's "<arch>/<bits>/<endian>" form.
func archName() string {
	bits := 32 << (^uint(0) >> 63)
	return fmt.Sprintf("%s/%d/EL", runtime.GOARCH, bits)
}
