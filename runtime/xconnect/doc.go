// Package xconnect is pv-xconnect, Pantavisor's service mesh between
// containers.
//
// Providers declare services in <container>/services.json
// (service-manifest-xconnect@1), consumers require them in run.json
// "services". Pantavisor computes the links of the running revision with
// Graph (identity and role come from the revision, never from a
// container) and serves them on GET /xconnect-graph. The pv-xconnect
// daemon (Run) reads that graph, and a Mesh injects one resource per link
// into the consumer's mount namespace at the link's target path: a
// socket it listens on and proxies to the provider's socket.
//
//	links := xconnect.Graph(st, pids)          // pantavisor side
//	m := xconnect.NewMesh(log)                 // pv-xconnect side
//	m.Reconcile(links)                         // add new links, remove gone ones
//
// Plugins by link type:
//   - "unix" and "wayland": a byte stream proxy that passes descriptors
//     (SCM_RIGHTS) with the bytes they came with;
//   - "rest": HTTP over a Unix socket whose requests carry X-PV-Client and
//     X-PV-Role set from the link (what the consumer sent under those
//     names is dropped);
//   - "dbus": a proxy of the provider's bus that masquerades the consumer
//     as the link's role: the role's uid in the provider's /etc/passwd (a
//     numeric role is the uid; a missing one is nobody, 65534) is what the
//     consumer's SASL EXTERNAL claims once rewritten, and the credentials
//     pv-xconnect connects to the bus with (per-thread setresuid), so the
//     bus's EXTERNAL check passes and its XML policy sees the role;
//   - "drm": no socket but a device node at the target, the provider's
//     DRM node (role "master": its card node, "render": its render node),
//     allowed in the consumer's cgroup v1 devices controller when that
//     denies it (cgroup2 containers allow every device).
package xconnect
