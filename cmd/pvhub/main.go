// Command pvhub runs an in-memory Pantacor Hub compatible server for a lab
// of a few devices: devices register (with or without a factory
// auto-token), users claim them with the challenge, devices log in and
// post their trails. -stats-listen serves its counters and each device's
// traffic (connections, requests, bytes on the wire) for load figures.
//
//	go run ./cmd/pvhub -listen :12365 -autotok user1:SECRET
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/hub"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pvhub:", err)
		os.Exit(1)
	}
}

type tokens map[string]string

func (t tokens) String() string { return "" }

func (t tokens) Set(v string) error {
	user, tok, ok := strings.Cut(v, ":")
	if !ok || user == "" || tok == "" {
		return errors.New("want user:token")
	}
	t[tok] = user
	return nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("pvhub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":12365", "address to serve plain HTTP on")
	cert := fs.String("tls-cert", "", "serve HTTPS with this certificate (PEM)")
	key := fs.String("tls-key", "", "and this key (PEM)")
	rate := fs.Int64("blob-rate", 0, "serve object downloads at most this many bytes/s (0: no limit; to test resumed downloads)")
	admin := fs.String("stats-listen", "", "serve GET /stats (counters and traffic per device, JSON) on this address")
	auto := tokens{}
	fs.Var(auto, "autotok", "user:token, a factory auto-token owned by user (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	meter := hub.NewMeter()
	h, err := hub.New(hub.Options{AutoTokens: auto, BlobRate: *rate, Meter: meter, Log: log})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ConnContext: meter.ConnContext}
	servers := []*http.Server{srv}
	if *admin != "" {
		al, err := net.Listen("tcp", *admin)
		if err != nil {
			l.Close()
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"stats": h.Stats(), "devices": meter.Snapshot()})
		})
		as := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, as)
		go as.Serve(al)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			s.Shutdown(sctx)
		}
	}()
	log.Info("pvhub listening", "addr", l.Addr().String())
	if *cert != "" {
		err = srv.ServeTLS(meter.Listener(l), *cert, *key)
	} else {
		err = srv.Serve(meter.Listener(l))
	}
	st := h.Stats()
	log.Info("pvhub stats", "requests", st.Requests, "registered", st.Registered, "logins", st.Logins,
		"object_bytes", st.ObjectBytes, "blob_bytes_served", st.BlobBytesServed,
		"log_entries", st.LogEntries)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
