package ctrl

import (
	"slices"
	"sort"
	"strings"
)

// Access tags a route: who may call it.
type Access int

// Route access.
const (
	Mgmt   Access = iota // the host or a platform with the mgmt role
	Anyone               // any known caller
)

// Body limits. Routes without a limit ignore any body; Stream = no limit
// (the endpoint streams and checks space itself).
const (
	smallMax = 4096
	// Stream is the Limit of a route whose body is not bounded.
	Stream = -1
)

// Route is one entry of a route table: ServeHTTP enforces its method,
// access and body limit before Serve runs, never the endpoint itself.
type Route struct {
	Method  string
	Pattern string // "/steps/{}/progress": {} matches one segment
	Write   bool   // changes device state (logged with the caller)
	Access  Access
	Limit   int64 // max body bytes; 0 = body ignored, Stream = unlimited
	Serve   func(h *Handler, q *Request)

	backend backend // optional backend the endpoint needs (501 without it)
	segs    []string
}

// backend names an optional Options backend an endpoint depends on.
type backend int

const (
	noBackend backend = iota
	containersBackend
	driversBackend
	extrasBackend
)

// has reports whether o provides b.
func (o *Options) has(b backend) bool {
	switch b {
	case containersBackend:
		return o.Containers != nil
	case driversBackend:
		return o.Drivers != nil
	case extrasBackend:
		return o.Extras != nil
	}
	return true
}

// pvctrl is the pv-ctrl route table (upstream's paths, spec §5).
var pvctrl = []Route{
	{Method: "GET", Pattern: "/buildinfo", Access: Mgmt, Serve: (*Handler).buildinfo},
	{Method: "GET", Pattern: "/config", Access: Mgmt, Serve: (*Handler).config},
	{Method: "GET", Pattern: "/config2", Access: Mgmt, Serve: (*Handler).config2},

	{Method: "GET", Pattern: "/user-meta", Access: Mgmt, Serve: (*Handler).userMetaList},
	{Method: "PUT", Pattern: "/user-meta/{}", Write: true, Access: Mgmt, Limit: smallMax, Serve: (*Handler).userMetaPut},
	{Method: "DELETE", Pattern: "/user-meta/{}", Write: true, Access: Mgmt, Serve: (*Handler).userMetaDelete},
	{Method: "GET", Pattern: "/device-meta", Access: Mgmt, Serve: (*Handler).deviceMetaList},
	{Method: "PUT", Pattern: "/device-meta/{}", Write: true, Access: Mgmt, Limit: smallMax, Serve: (*Handler).deviceMetaPut},
	{Method: "DELETE", Pattern: "/device-meta/{}", Write: true, Access: Mgmt, Serve: (*Handler).deviceMetaDelete},

	{Method: "GET", Pattern: "/objects", Access: Mgmt, Serve: (*Handler).objectsList},
	{Method: "GET", Pattern: "/objects/{}", Access: Mgmt, Serve: (*Handler).objectGet},
	{Method: "PUT", Pattern: "/objects/{}", Write: true, Access: Mgmt, Limit: Stream, Serve: (*Handler).objectPut},

	{Method: "GET", Pattern: "/steps", Access: Mgmt, Serve: (*Handler).stepsList},
	{Method: "GET", Pattern: "/steps/{}", Access: Mgmt, Serve: (*Handler).stepGet},
	{Method: "GET", Pattern: "/steps/locals/{}", Access: Mgmt, Serve: (*Handler).stepGetLocal},
	{Method: "PUT", Pattern: "/steps/locals/{}", Write: true, Access: Mgmt, Limit: Stream, Serve: (*Handler).stepPut},
	{Method: "GET", Pattern: "/steps/{}/progress", Access: Mgmt, Serve: (*Handler).stepProgress},
	{Method: "GET", Pattern: "/steps/locals/{}/progress", Access: Mgmt, Serve: (*Handler).stepProgressLocal},
	{Method: "PUT", Pattern: "/steps/{}/commitmsg", Write: true, Access: Mgmt, Limit: 256, Serve: (*Handler).stepCommitMsg},
	{Method: "PUT", Pattern: "/steps/locals/{}/commitmsg", Write: true, Access: Mgmt, Limit: 256, Serve: (*Handler).stepCommitMsgLocal},

	{Method: "POST", Pattern: "/storage/gc", Write: true, Access: Mgmt, Serve: (*Handler).storageGC},
	{Method: "GET", Pattern: "/daemons", Access: Mgmt, Serve: (*Handler).daemonsList},
	{Method: "PUT", Pattern: "/daemons/{}", Write: true, Access: Mgmt, Limit: 1024, Serve: (*Handler).daemonAction},
	{Method: "POST", Pattern: "/commands", Write: true, Access: Mgmt, Limit: smallMax, Serve: (*Handler).commands},

	{Method: "GET", Pattern: "/containers", backend: containersBackend, Access: Mgmt, Serve: (*Handler).containersList},
	{Method: "PUT", Pattern: "/containers/{}", backend: containersBackend, Write: true, Access: Mgmt, Limit: 1024, Serve: (*Handler).containerAction},
	{Method: "GET", Pattern: "/groups", backend: containersBackend, Access: Mgmt, Serve: (*Handler).groupsList},
	{Method: "POST", Pattern: "/signal", backend: containersBackend, Write: true, Access: Anyone, Limit: smallMax, Serve: (*Handler).signal},
	{Method: "GET", Pattern: "/drivers", backend: driversBackend, Access: Mgmt, Serve: (*Handler).driversList},
	{Method: "PUT", Pattern: "/drivers/load", backend: driversBackend, Write: true, Access: Mgmt, Serve: (*Handler).driversLoadAll},
	{Method: "PUT", Pattern: "/drivers/unload", backend: driversBackend, Write: true, Access: Mgmt, Serve: (*Handler).driversUnloadAll},
	{Method: "PUT", Pattern: "/drivers/{}/load", backend: driversBackend, Write: true, Access: Mgmt, Serve: (*Handler).driverLoad},
	{Method: "PUT", Pattern: "/drivers/{}/unload", backend: driversBackend, Write: true, Access: Mgmt, Serve: (*Handler).driverUnload},
	{Method: "GET", Pattern: "/xconnect-graph", backend: extrasBackend, Access: Mgmt, Serve: (*Handler).xconnectGraph},
	{Method: "GET", Pattern: "/wakelocks", backend: extrasBackend, Access: Mgmt, Serve: (*Handler).wakelocks},
}

// DefaultRoutes returns the pv-ctrl route table, Options.Routes' default;
// another surface can start from it or build its own.
func DefaultRoutes() []Route { return slices.Clone(pvctrl) }

// compile returns a copy of rs with the patterns split.
func compile(rs []Route) []Route {
	rs = slices.Clone(rs)
	for i := range rs {
		rs[i].segs = strings.Split(strings.TrimPrefix(rs[i].Pattern, "/"), "/")
	}
	return rs
}

// match finds the route for segs and method. Literal segments win over
// {} (so /steps/locals/x is not /steps/{}/progress). When the path matches
// only under other methods, it returns those methods in allowed.
func match(routes []Route, segs []string, method string) (*Route, []string, []string) {
	var best *Route
	var bestArgs []string
	bestScore := -1
	methods := map[string]bool{}
	for i := range routes {
		rt := &routes[i]
		args, score, ok := matchSegs(rt.segs, segs)
		if !ok {
			continue
		}
		if rt.Method != method {
			methods[rt.Method] = true
			continue
		}
		if score > bestScore {
			best, bestArgs, bestScore = rt, args, score
		}
	}
	if best != nil {
		return best, bestArgs, nil
	}
	var allowed []string
	for m := range methods {
		allowed = append(allowed, m)
	}
	sort.Strings(allowed)
	return nil, nil, allowed
}

// matchSegs matches a pattern; score counts literal segments.
func matchSegs(pat, segs []string) ([]string, int, bool) {
	if len(pat) != len(segs) {
		return nil, 0, false
	}
	var args []string
	score := 0
	for i, p := range pat {
		if p == "{}" {
			if segs[i] == "" {
				return nil, 0, false
			}
			args = append(args, segs[i])
			continue
		}
		if p != segs[i] {
			return nil, 0, false
		}
		score++
	}
	return args, score, true
}

// Routes lists "METHOD /pattern" of every route of h (for docs and tests).
func (h *Handler) Routes() []string {
	out := make([]string, len(h.routes))
	for i, rt := range h.routes {
		out[i] = rt.Method + " " + rt.Pattern
	}
	return out
}
