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
	"net/http"
	"os"
	"path/filepath"
	"runtime"
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
		Updates:      d.hubUpdates(),
		DownloadDir:  filepath.Join(d.store.Root(), "tmp", "hub-downloads"),
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

func (h hubUpdates) PutObject(sha, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := h.d.store.PutObjectSize(sha, fi.Size(), f); err != nil {
		return err
	}
	h.d.objectUploaded()
	return nil
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
