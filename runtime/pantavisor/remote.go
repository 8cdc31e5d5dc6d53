package pantavisor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/metadata"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/remote"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// hubClient is the running Pantacor Hub client. Only the FSM goroutine
// starts and stops it; the client's own goroutine owns its state.
type hubClient struct {
	c      *remote.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// hubWatch follows the remote update under test for the network
// rollback; owned by the FSM goroutine.
type hubWatch struct {
	rev     string
	since   time.Time // first seen INPROGRESS or TESTING in this boot
	testing time.Time // first seen TESTING
}

// checkHub is upstream's network rollback (spec §4), one WAIT tick: a
// remote update (not locals/) under test stays INPROGRESS until the Hub
// answers; with no answer for PH_UPDATER_NETWORK_TIMEOUT it fails with
// "Hub not reachable", and a Hub failing (no answer since its last
// failure) during TESTING fails it with "Hub communication not stable".
// Both roll back.
func (d *Daemon) checkHub() Next {
	if d.hub != nil && d.local() {
		// A local revision runs (a non-reboot LOCAL_RUN of locals/…):
		// remote control stops until GO_REMOTE (spec §1 WAIT 2).
		d.log.Info("remote: local revision running, hub client stopped until GO_REMOTE", "rev", d.Revision())
		d.stopRemote()
		d.publishDevmeta()
	}
	u := d.updater
	if u == nil || d.hub == nil || !u.Updating() {
		d.watch = hubWatch{}
		return Stay
	}
	rev := u.Running()
	p, err := d.store.Progress(rev)
	if err != nil || strings.HasPrefix(rev, "locals/") || (p.Status != progress.Inprogress && p.Status != progress.Testing) {
		d.watch = hubWatch{}
		return Stay
	}
	now := time.Now()
	if d.watch.rev != rev {
		d.watch = hubWatch{rev: rev, since: now}
	}
	ok, failed := d.hub.c.Contact()
	reached := ok.After(d.watch.since)
	u.WaitHub(!reached)
	timeout := d.conf.Duration(config.HubUpdaterNetworkTimeout)
	switch {
	case !reached && now.Sub(d.watch.since) >= timeout:
		return u.HubFailed(progress.MsgHubNotReachable, fmt.Errorf("no answer from the hub for %v", timeout))
	case p.Status != progress.Testing:
	case d.watch.testing.IsZero():
		d.watch.testing = now
	case failed.After(d.watch.testing) && failed.After(ok):
		return u.HubFailed(progress.MsgHubNotStable, errors.New("the hub stopped answering during TESTING"))
	}
	return Stay
}

// startRemote starts the Hub client once the device is in remote mode
// (PV_CONTROL_REMOTE on and not running a local revision, or after
// GO_REMOTE). A device with no Hub configured at all (PH_CREDS_HOST left
// at its default: no pantahub.config, env, command line or OEM value)
// stays offline rather than registering itself on api.pantahub.com; real
// images ship a pantahub.config. Called from the FSM goroutine only; it
// never blocks.
func (d *Daemon) startRemote(ctx context.Context) {
	if d.hub != nil || d.mode == Standalone || d.local() || d.devmeta == nil || d.conf.Source(config.HubCredsHost) == config.Default {
		return
	}
	// The trail starts from the factory revision 0; a device whose 0 is
	// gone posts what it runs.
	rev := "0"
	if _, err := d.store.StateJSON(rev); err != nil {
		rev = d.Revision()
	}
	hc := d.opt.HubHTTP
	if hc == nil {
		hc = hubHTTP(d.conf, d.log)
	}
	c := remote.New(remote.Options{
		Config:     d.conf,
		ConfigPath: filepath.Join(d.root, "config", "pantahub.config"),
		RunDir:     d.runDir,
		Meta:       d.devmeta,
		UserAgent:  "Pantavisor/2 (Linux; " + runtime.GOARCH + ") PV/" + d.opt.Version,
		Factory: func() (remote.Revision, error) {
			state, err := d.store.StateJSON(rev)
			return remote.Revision{State: state, Open: func(sha string) (*os.File, error) {
				return d.store.OpenObject(sha)
			}}, err
		},
		HTTP:         hc,
		PollInterval: d.conf.Duration(config.HubUpdaterInterval),
		// Read once per client start: a run-time change applies after the
		// next GO_REMOTE or reboot.
		DevMetaInterval:  d.conf.Duration(config.HubMetadataDevMetaInterval),
		UserMetaInterval: d.conf.Duration(config.HubMetadataUsrMetaInterval),
		DeviceMeta:       d.devmeta.List,
		UserMeta:         d.usrmeta.Replace,
		Updates:          d.hubUpdates(),
		// A download try that fails waits PV_REVISION_RETRIES_TIMEOUT;
		// past PV_REVISION_RETRIES the update is WONTGO.
		UpdateRetries:    d.conf.Int(config.RevisionRetries),
		UpdateRetryDelay: d.conf.Duration(config.RevisionRetriesTimeout),
		Logs:             d.logQueue,
		PushLogs:         func() bool { return d.conf.Bool(config.LogPush) },
		Log:              d.log.With("sub", "remote"),
	})
	// The hook only signals (never blocks); the client pushes from its own
	// goroutine. A stopped client's channel just stays full.
	d.devmeta.OnChange(func(metadata.Change) { c.DeviceMetaChanged() })
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &hubClient{c: c, cancel: cancel, done: make(chan struct{})}
	d.logPushOn.Store(true)
	d.hub = h
	go func() {
		defer close(h.done)
		c.Run(rctx)
	}()
}

// unclaim is UNCLAIM (spec §5): the device forgets its Hub identity. The
// credentials are blanked and saved to pantahub.config, devmeta
// pantahub.claimed is removed, and a running client starts over: it
// registers as a new device (a new challenge, or owned again at once when
// a factory auto-token is configured). FSM goroutine only.
func (d *Daemon) unclaim(ctx context.Context) {
	running := d.hub != nil
	d.stopRemote()
	for _, k := range []config.Key{config.HubCredsID, config.HubCredsPRN, config.HubCredsSecret} {
		if err := d.conf.Set(k.Name(), "", config.PHConf); err != nil {
			d.log.Error("unclaim", "key", k.Name(), "err", err)
		}
	}
	if err := d.conf.WritePHConfig(filepath.Join(d.root, "config", "pantahub.config")); err != nil {
		d.log.Error("unclaim: save credentials", "err", err)
	}
	if d.devmeta != nil {
		if err := d.devmeta.Delete("pantahub.claimed"); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			d.log.Warn("unclaim: devmeta", "err", err)
		}
	}
	d.log.Info("unclaimed: credentials cleared", "hub client restarted", running)
	if running {
		d.startRemote(ctx)
	}
}

// claimed reports whether the Hub client saw an owner (devmeta
// pantahub.claimed); any goroutine.
func (d *Daemon) claimed() bool {
	if d.devmeta == nil {
		return false
	}
	v, ok := d.devmeta.Get("pantahub.claimed")
	return ok && string(v) == "1"
}

// stopRemote stops the Hub client and waits for it (its calls are bounded
// by their HTTP timeout and cancelled by the context).
func (d *Daemon) stopRemote() {
	if d.hub == nil {
		return
	}
	d.logPushOn.Store(false)
	d.hub.cancel()
	<-d.hub.done
	d.hub = nil
}

// hubHTTP is the Hub's HTTP client. As upstream's libthttp, it trusts the
// certificates in PV_LIBTHHTTP_CERTSDIR (PEM files); when that directory
// has none, the system's roots (and Go's SSL_CERT_FILE/SSL_CERT_DIR).
// Never insecure. A request times out after PH_LIBEVENT_HTTP_TIMEOUT. It
// goes through the PH_CREDS_PROXY_* proxy when one is configured, never
// through a proxy of the environment.
func hubHTTP(c *config.Config, log *slog.Logger) *http.Client {
	certsDir := c.Get(config.LibThHTTPCertsDir)
	pool := x509.NewCertPool()
	n := 0
	entries, _ := os.ReadDir(certsDir)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(certsDir, e.Name()))
		if err == nil && pool.AppendCertsFromPEM(b) {
			n++
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if n > 0 {
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	} else {
		log.Info("remote: no certificates in PV_LIBTHHTTP_CERTSDIR, using the system's", "dir", certsDir)
	}
	t.Proxy = nil
	switch u, err := hubProxy(c); {
	case err != nil:
		log.Warn("remote: proxy not used", "err", err)
	case u != nil:
		log.Info("remote: through proxy", "proxy", u.Host)
		t.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: t, Timeout: remote.RequestTimeout(c)}
}

// hubProxy is the HTTP proxy the Hub is reached through (HTTPS through a
// CONNECT tunnel): PH_CREDS_PROXY_HOST and PH_CREDS_PROXY_PORT, unless
// PH_CREDS_PROXY_NOPROXYCONNECT=1 turns it off; nil: direct.
func hubProxy(c *config.Config) (*url.URL, error) {
	host := strings.TrimSpace(c.Get(config.HubCredsProxyHost))
	if host == "" || c.Int(config.HubCredsProxyNoProxyConnect) == 1 {
		return nil, nil
	}
	if strings.ContainsAny(host, "/@?#[] \t") {
		return nil, fmt.Errorf("PH_CREDS_PROXY_HOST=%q: not a host name or address", host)
	}
	port := c.Int(config.HubCredsProxyPort)
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("PH_CREDS_PROXY_PORT=%d: not a port", port)
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

// hubUpdates is the daemon's side of remote updates, or nil without an
// updater. The Hub client stages a downloaded revision as PUT /steps does
// (parse, signatures, nothing kept on a refusal) and queues it to the FSM
// as LOCAL_RUN: the updater, run by the FSM goroutine only, stays the one
// owner of update state; the client mirrors its progress file.
func (d *Daemon) hubUpdates() remote.Updates {
	if d.updater == nil {
		return nil
	}
	return hubUpdates{d: d, steps: newStepsAPI(d.store, d.inUse, func(b []byte) (*state.State, error) {
		rev, err := parseRevision("", b, d.mode == AppEngine)
		if err != nil {
			return nil, err
		}
		return rev.state, nil
	}, d.verify)}
}

type hubUpdates struct {
	d     *Daemon
	steps stepsAPI
}

func (h hubUpdates) HasObject(sha string) bool { return h.d.store.HasObject(sha) }

// OpenPartial opens a resumable download in storage (its remaining bytes
// promised in the space ledger).
// Short of space, it runs the GC once; still short, the update is
// WONTGO "Space required X B, available Y B" (spec §4).
func (h hubUpdates) OpenPartial(sha string, size int64) (remote.Partial, error) {
	p, err := h.d.store.OpenPartial(sha, size)
	if errors.Is(err, storage.ErrNoSpace) && h.d.updater != nil {
		if _, gerr := h.d.updater.GC(); gerr != nil {
			h.d.log.Warn("remote download: gc", "err", gerr)
		}
		p, err = h.d.store.OpenPartial(sha, size)
	}
	if errors.Is(err, storage.ErrNoSpace) {
		var avail int64
		if u, uerr := h.d.store.Usage(); uerr == nil {
			avail = max(int64(u.RealFree)-h.d.store.Promised(), 0)
		}
		return nil, remote.WontGo(progress.Space(size-h.d.store.PartialSize(sha), avail), err)
	}
	if err != nil {
		return nil, err
	}
	return hubPartial{p, h.d}, nil
}

// Space checks the whole download against the free space left after the
// GC reserve and the writes in flight (storage's ledger), running the GC
// once when short, as upstream does before DOWNLOADING (spec §4).
func (h hubUpdates) Space(need int64) error {
	avail, err := h.available()
	if err != nil {
		return err
	}
	if need > avail && h.d.updater != nil {
		if _, gerr := h.d.updater.GC(); gerr != nil {
			h.d.log.Warn("remote space check: gc", "err", gerr)
		}
		if avail, err = h.available(); err != nil {
			return err
		}
	}
	if need > avail {
		return remote.WontGo(progress.Space(need, avail), fmt.Errorf("update needs %d B: %w", need, storage.ErrNoSpace))
	}
	return nil
}

// available is storage's free space after the reserve, less what writes
// in flight were promised.
func (h hubUpdates) available() (int64, error) {
	u, err := h.d.store.Usage()
	if err != nil {
		return 0, err
	}
	return max(int64(u.RealFree)-h.d.store.Promised(), 0), nil
}

func (h hubUpdates) PartialSize(sha string) int64 { return h.d.store.PartialSize(sha) }
func (h hubUpdates) DropPartials() error {
	h.Hold(nil)
	return h.d.store.RemovePartials()
}

func (h hubUpdates) Hold(shas []string) {
	if h.d.updater != nil {
		h.d.updater.Hold(shas)
	}
}

// hubPartial maps storage's checksum error to the client's and defers
// the threshold GC after an object landed (spec §12).
type hubPartial struct {
	*storage.Partial
	d *Daemon
}

func (p hubPartial) Install() error {
	err := p.Partial.Install()
	if errors.Is(err, storage.ErrBadChecksum) {
		return fmt.Errorf("%w: %w", remote.ErrBadObject, err)
	}
	if err == nil {
		p.d.objectUploaded()
	}
	return err
}

// Stage stores the state; a state the parser or the signature check
// refuses is WONTGO (steps.Put keeps nothing of it).
func (h hubUpdates) Stage(rev string, st json.RawMessage) error {
	if err := storage.ValidRevision(rev); err != nil {
		return remote.WontGo(progress.MsgStateBadFormat, err)
	}
	err := h.steps.Put(rev, int64(len(st)), bytes.NewReader(st))
	if errors.Is(err, ctrl.ErrBadState) || errors.Is(err, ctrl.ErrTooLarge) {
		msg := progress.MsgStateBadFormat
		if strings.HasPrefix(err.Error(), "Secureboot:") {
			msg = progress.MsgSigFailed
		}
		return remote.WontGo(msg, err)
	}
	if err != nil {
		return fmt.Errorf("stage %s: %w", rev, err)
	}
	return nil
}

// Run queues LOCAL_RUN rev to the FSM; a full queue is an error the
// client retries.
func (h hubUpdates) Run(rev string) error {
	return h.d.Queue(command.Command{Op: command.OpLocalRun, Payload: rev})
}

func (h hubUpdates) Progress(rev string) (progress.Progress, error) {
	return h.d.store.Progress(rev)
}
