package pantavisor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/metadata"
	"github.com/pantavisor/pantavisor-go/runtime/remote"
)

// hubClient is the running Pantacor Hub client. Only the FSM goroutine
// starts and stops it; the client's own goroutine owns its state.
type hubClient struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startRemote starts the Hub client once the device is in remote mode
// (PV_CONTROL_REMOTE on and not running a local revision, or after
// GO_REMOTE). A device with no Hub configured at all (PH_CREDS_HOST left
// at its default: no pantahub.config, env, command line or OEM value)
// stays offline rather than registering itself on api.pantahub.com; real
// images ship a pantahub.config. Called from the FSM goroutine only; it
// never blocks.
func (d *Daemon) startRemote(ctx context.Context) {
	if d.hub != nil || d.local() || d.devmeta == nil || d.conf.Source(config.HubCredsHost) == config.Default {
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
		hc = hubHTTP(d.conf.Get(config.LibThHTTPCertsDir), d.log)
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
		DeviceMeta:   d.devmeta.List,
		UserMeta:     d.usrmeta.Replace,
		Log:          d.log.With("sub", "remote"),
	})
	// The hook only signals (never blocks); the client pushes from its own
	// goroutine. A stopped client's channel just stays full.
	d.devmeta.OnChange(func(metadata.Change) { c.DeviceMetaChanged() })
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &hubClient{cancel: cancel, done: make(chan struct{})}
	d.hub = h
	go func() {
		defer close(h.done)
		c.Run(rctx)
	}()
}

// stopRemote stops the Hub client and waits for it (its calls are bounded
// by their HTTP timeout and cancelled by the context).
func (d *Daemon) stopRemote() {
	if d.hub == nil {
		return
	}
	d.hub.cancel()
	<-d.hub.done
	d.hub = nil
}

// hubHTTP is the Hub's HTTP client. As upstream's libthttp, it trusts the
// certificates in PV_LIBTHHTTP_CERTSDIR (PEM files); when that directory
// has none, the system's roots (and Go's SSL_CERT_FILE/SSL_CERT_DIR).
// Never insecure.
func hubHTTP(certsDir string, log *slog.Logger) *http.Client {
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
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}
