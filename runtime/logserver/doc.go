// Package logserver is Pantavisor's log server (spec §6): it collects log
// lines from pantavisor itself (slog records via [Server.Handler],
// [Server.Write]), from containers through the pv-ctrl-log socket
// (RFC5424/RFC3164 syslog, JSON, key/value, and the binary LEGACY/CMD
// frames) and from file descriptors handed over on pv-fd-log or subscribed
// in-process ([Server.Subscribe], [Server.SubscribeKmsg]). It writes them to
// the configured outputs (filetree, singlefile, stdout, stdout.pantavisor,
// stdout.containers, stdout_direct, nullsink) plus the always-on update
// capture (trails/<rev>/.pv/logs).
//
// Producers never block: each queued output owns a bounded queue and one
// goroutine that owns its files; a slow output loses lines, counted in
// [Server.Stats]. Gzip rotation and the watermark cleanup of the log
// directory run on a separate maintenance goroutine.
//
// Choices where upstream code and docs disagree (spec ⚠):
//   - singlefile JSON lines use the documented "plat" key (the C code
//     writes "platform"); update lines (progress "logs") use "platform",
//     as both the progress docs and the code do; "tnano" carries the real
//     sub-second part.
//   - the platform of RFC/JSON/KV messages is the sender's cgroup, as the
//     code does; the RFC5424 HOSTNAME the docs mention is used only when
//     the cgroup names no platform.
//
// Usage sketch:
//
//	srv, err := logserver.New(logserver.Options{
//		RunDir: "/run/pantavisor/pv", LogDir: "/storage/logs",
//		Rev: rev, Outputs: []string{"filetree"}, Level: 4, Log: log,
//	})
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	defer srv.Close()
//	log = slog.New(srv.Handler()) // log.Info("msg", "src", "ctrl")
//	srv.Subscribe(consolePty, "mycontainer", "lxc/console.log", logserver.Info)
//	srv.StartUpdate(newRev) … srv.StopUpdate()
package logserver
