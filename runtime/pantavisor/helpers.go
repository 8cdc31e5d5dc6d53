package pantavisor

import (
	"context"
	"errors"

	"github.com/pantavisor/pantavisor-go/runtime/daemons"
	"github.com/pantavisor/pantavisor-go/runtime/xconnect"
)

// XConnectDaemon is the name of the service mesh daemon in GET /daemons.
const XConnectDaemon = "pv-xconnect"

// startHelpers starts the managed daemons once the revision runs (the
// graph pv-xconnect reads exists from then on).
func (d *Daemon) startHelpers(ctx context.Context) {
	if d.helpers == nil || d.helpersDone != nil {
		return
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.helpersStop, d.helpersDone = cancel, make(chan struct{})
	go func() {
		defer close(d.helpersDone)
		d.helpers.Run(hctx)
	}()
}

// stopHelpers stops the managed daemons and waits until they are down.
func (d *Daemon) stopHelpers() {
	if d.helpersDone == nil {
		return
	}
	d.helpersStop()
	<-d.helpersDone
}

// reconcileXConnect asks pv-xconnect to read the graph now
// (xconnect.ReadSignal, harmless if it is still starting): on
// XCONNECT_GRAPH and whenever a container starts or stops.
func (d *Daemon) reconcileXConnect() {
	if d.helpers == nil {
		return
	}
	if err := d.helpers.Signal(XConnectDaemon, xconnect.ReadSignal); err != nil && !errors.Is(err, daemons.ErrNotRunning) {
		d.log.Warn("xconnect: reconcile", "err", err)
	}
}
