package xconnect

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
)

// Poll is how often pv-xconnect reads the graph when nothing signals it;
// Pantavisor sends ReadSignal on XCONNECT_GRAPH and whenever a container
// starts or stops.
const Poll = 5 * time.Second

// RetryMin is how soon pv-xconnect reads the graph again after a link
// could not be injected, doubling up to RetryMax while it still cannot: a
// provider's resource may come after both containers started (a DRM node
// whose driver the coldplug loads beside the containers' start), and the
// consumer waits for it. A try is a pv-ctrl request and a path lookup.
const (
	RetryMin = 250 * time.Millisecond
	RetryMax = time.Second
)

// ReadSignal asks pv-xconnect to read the graph now (so does SIGHUP, for
// people). Its default action is to ignore it: one sent while pv-xconnect
// is still starting, before its handler, is harmless (the first read comes
// after the handler), where an early SIGHUP killed it for a restart backoff.
const ReadSignal = syscall.SIGWINCH

// Main is the pv-xconnect program: it reads GET /xconnect-graph from
// pv-ctrl (-socket, default: upstream's socket detection) at start, on
// ReadSignal or SIGHUP and every Poll (every RetryMin to RetryMax while a
// link fails), and reconciles the mesh, until ctx ends or SIGTERM; then it
// removes what it injected. A failure is logged when it changes, not at
// every try.
func Main(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	// Handlers first: a SIGHUP arriving before its handler would kill us.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, ReadSignal, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	fs := flag.NewFlagSet("pv-xconnect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("socket", "", "pv-ctrl socket (default: detected)")
	proc := fs.String("proc", "/proc", "proc file system")
	probe := fs.Bool(ProbeOpen, false, "internal: open fd 3 read-write and exit (the cgroup2 device check)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *probe {
		return probeOpen()
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	c := client.New(*sock)
	m := NewMesh(log, *proc)
	defer m.Close()
	t := time.NewTicker(Poll)
	defer t.Stop()
	failing, refused := "", ""
	var retry time.Duration
	for {
		var links []ctrl.XConnectLink
		if err := c.JSON(ctx, "GET", "/xconnect-graph", nil, &links); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if msg := err.Error(); msg != failing {
				log.Warn("xconnect: read graph", "err", err)
				failing = msg
			}
		} else {
			failing = ""
			if err := m.Reconcile(links); err != nil {
				if msg := err.Error(); msg != refused {
					log.Warn("xconnect: reconcile", "err", err)
					refused = msg
				}
				retry = min(max(2*retry, RetryMin), RetryMax)
			} else {
				refused, retry = "", 0
			}
		}
		var again <-chan time.Time
		if retry > 0 {
			again = time.After(retry)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
		case <-t.C:
		case <-again:
		}
	}
}
