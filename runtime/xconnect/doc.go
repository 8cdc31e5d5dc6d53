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
// Plugins by link type: "unix" (a byte stream proxy) and "rest" (HTTP
// over a Unix socket whose requests carry X-PV-Client and X-PV-Role set
// from the link; what the consumer sent under those names is dropped).
// "dbus", "drm" and "wayland" links are listed in the graph but not
// injected yet: the mesh logs them once as unsupported.
package xconnect
