package pantavisor

import (
	"context"
	"os"
	"path/filepath"
	"runtime"

	"github.com/pantavisor/pantavisor-go/runtime/config"
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
	rev := d.Revision()
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
		HTTP: d.opt.HubHTTP,
		Log:  d.log.With("sub", "remote"),
	})
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
