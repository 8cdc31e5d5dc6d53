// Package logserver is Pantavisor's log server: it collects log lines from
// pantavisor itself (slog records, [Server.Write]), from containers through
// the pv-ctrl-log socket (RFC5424/RFC3164 syslog, JSON, key/value and the
// binary LEGACY/CMD frames) and from file descriptors handed over on
// pv-fd-log or subscribed in-process ([Server.Subscribe]), and writes them to
// the configured outputs (filetree, singlefile, stdout variants, nullsink)
// plus the always-on update capture.
//
// Producers never block: every output owns a bounded queue and a goroutine;
// when an output falls behind it loses lines, which are counted
// ([Server.Stats]). Log files are rotated to gzip and the log directory is
// kept under its budget by a separate maintenance goroutine.
//
// Usage sketch:
//
//	srv, err := logserver.New(logserver.Options{
//		RunDir: "/run/pantavisor/pv", LogDir: "/storage/logs",
//		Rev: "0", Outputs: []string{"filetree"}, Level: logserver.Debug,
//		Log: log,
//	})
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	defer srv.Close()
//	log = slog.New(srv.Handler())
//	srv.Subscribe(consolePty, "mycontainer", "lxc/console.log", logserver.Info)
package logserver
