// Command pvr-sdk is the HTTP server of the pvr-sdk platform container:
// pvr clone/post, the pvtx API and the logs API on port 12368 (see
// runtime/pvrsdk). It is the container's init: SIGPWR (LXC's halt),
// SIGTERM and SIGINT stop it cleanly.
//
//	pvr-sdk [-config /etc/pvr-sdk/config.json] [-socket PATH] [-pvtx DIR] [-logs DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
	"github.com/pantavisor/pantavisor-go/runtime/discovery"
	"github.com/pantavisor/pantavisor-go/runtime/pvrsdk"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGPWR, syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pvr-sdk:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("pvr-sdk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conf := fs.String("config", pvrsdk.ConfigPath, "configuration file")
	socket := fs.String("socket", "", "pv-ctrl socket (default: detected)")
	pvtxDir := fs.String("pvtx", "/var/lib/pvr-sdk/pvtx", "pvtx API transaction directory")
	logDir := fs.String("logs", "/pantavisor/logs", "log tree of the device")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	c, err := pvrsdk.ReadConfig(*conf)
	if err != nil {
		// A bad posted config must not take local access away: keep
		// serving on the loopback default, and say why.
		log.Error("pvr-sdk: using the default configuration", "err", err)
		c = pvrsdk.DefaultConfig()
	}
	srv, err := pvrsdk.New(pvrsdk.Options{Client: client.New(*socket), PvtxDir: *pvtxDir, LogDir: *logDir, Log: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr())
	if err != nil {
		return err
	}
	ln = pvrsdk.LimitListener(ln, pvrsdk.DefaultMaxConns)
	log.Info("pvr-sdk: listening", "addr", ln.Addr().String())
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	if announced(c) {
		go func() {
			_ = discovery.Announce(ctx, discovery.Options{Log: log, Info: func() discovery.Info {
				return discovery.ReadInfo("/pantavisor")
			}})
		}()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	log.Info("pvr-sdk: stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// announced says whether the device is announced over mDNS (pvr device
// scan): only once pvr-sdk is opened to the LAN, as announcing a device
// whose pvr API answers on loopback only would list what nobody can clone.
func announced(c pvrsdk.Config) bool {
	if c.Listen == "" || c.Listen == "localhost" {
		return c.Listen == ""
	}
	ip := net.ParseIP(c.Listen)
	return ip == nil || !ip.IsLoopback()
}
