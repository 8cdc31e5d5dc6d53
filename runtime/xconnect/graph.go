package xconnect

import (
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// AnyRole is the role of a requirement that names none.
const AnyRole = "any"

// Graph returns the xconnect links of st between running containers:
// one per required or optional service of a consumer that some platform
// exports, when both consumer and provider have an init pid in pids. The
// order is the consumers' (by name), then required before optional, in
// run.json order. A requirement without a target gets the provider's
// socket path; one without an interface gets the type, as upstream.
func Graph(st *state.State, pids map[string]int) []ctrl.XConnectLink {
	links := []ctrl.XConnectLink{}
	if st == nil {
		return links
	}
	for _, c := range st.Platforms() {
		if c.Services == nil || pids[c.Name] <= 0 {
			continue
		}
		for _, reqs := range [][]state.ServiceRequirement{c.Services.Required, c.Services.Optional} {
			for _, r := range reqs {
				p, e, ok := st.ServiceProvider(r)
				if !ok || pids[p.Name] <= 0 {
					continue
				}
				l := ctrl.XConnectLink{Consumer: c.Name, ConsumerPid: pids[c.Name], Provider: p.Name,
					ProviderPid: pids[p.Name], Name: e.Name, Type: e.Type, Role: r.Role,
					Interface: r.Interface, Target: r.Target, Socket: e.Socket}
				if l.Role == "" {
					l.Role = AnyRole
				}
				if l.Interface == "" {
					l.Interface = l.Type
				}
				if l.Target == "" {
					l.Target = l.Socket
				}
				links = append(links, l)
			}
		}
	}
	return links
}
