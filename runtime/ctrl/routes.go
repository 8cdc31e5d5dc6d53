package ctrl

import (
	"sort"
	"strings"
)

// access tags a route: who may call it.
type access int

const (
	mgmt   access = iota // _pv_ or a platform with the mgmt role
	anyone               // any known caller
)

// Body limits. Routes without a limit ignore any body; stream = no limit
// (the backend streams and checks space).
const (
	smallMax = 4096
	stream   = -1
)

// route is one entry of the route table.
type route struct {
	method  string
	pattern string // "/steps/{}/progress": {} matches one segment
	write   bool   // changes device state
	access  access
	limit   int64   // max body bytes, stream = unlimited
	backend backend // optional backend the endpoint needs (501 without it)
	serve   func(h *Handler, q *request)
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

// routes is THE route table: method, access and body size are enforced by
// ServeHTTP from here, never inside the endpoints.
var routes = compile([]route{
	{method: "GET", pattern: "/buildinfo", access: mgmt, serve: (*Handler).buildinfo},
	{method: "GET", pattern: "/config", access: mgmt, serve: (*Handler).config},
	{method: "GET", pattern: "/config2", access: mgmt, serve: (*Handler).config2},

	{method: "GET", pattern: "/user-meta", access: mgmt, serve: (*Handler).userMetaList},
	{method: "PUT", pattern: "/user-meta/{}", write: true, access: mgmt, limit: smallMax, serve: (*Handler).userMetaPut},
	{method: "DELETE", pattern: "/user-meta/{}", write: true, access: mgmt, serve: (*Handler).userMetaDelete},
	{method: "GET", pattern: "/device-meta", access: mgmt, serve: (*Handler).deviceMetaList},
	{method: "PUT", pattern: "/device-meta/{}", write: true, access: mgmt, limit: smallMax, serve: (*Handler).deviceMetaPut},
	{method: "DELETE", pattern: "/device-meta/{}", write: true, access: mgmt, serve: (*Handler).deviceMetaDelete},

	{method: "GET", pattern: "/objects", access: mgmt, serve: (*Handler).objectsList},
	{method: "GET", pattern: "/objects/{}", access: mgmt, serve: (*Handler).objectGet},
	{method: "PUT", pattern: "/objects/{}", write: true, access: mgmt, limit: stream, serve: (*Handler).objectPut},

	{method: "GET", pattern: "/steps", access: mgmt, serve: (*Handler).stepsList},
	{method: "GET", pattern: "/steps/{}", access: mgmt, serve: (*Handler).stepGet},
	{method: "GET", pattern: "/steps/locals/{}", access: mgmt, serve: (*Handler).stepGetLocal},
	{method: "PUT", pattern: "/steps/locals/{}", write: true, access: mgmt, limit: stream, serve: (*Handler).stepPut},
	{method: "GET", pattern: "/steps/{}/progress", access: mgmt, serve: (*Handler).stepProgress},
	{method: "GET", pattern: "/steps/locals/{}/progress", access: mgmt, serve: (*Handler).stepProgressLocal},
	{method: "PUT", pattern: "/steps/{}/commitmsg", write: true, access: mgmt, limit: 256, serve: (*Handler).stepCommitMsg},
	{method: "PUT", pattern: "/steps/locals/{}/commitmsg", write: true, access: mgmt, limit: 256, serve: (*Handler).stepCommitMsgLocal},

	{method: "POST", pattern: "/storage/gc", write: true, access: mgmt, serve: (*Handler).storageGC},
	{method: "GET", pattern: "/daemons", access: mgmt, serve: (*Handler).daemonsList},
	{method: "PUT", pattern: "/daemons/{}", write: true, access: mgmt, limit: 1024, serve: (*Handler).daemonAction},
	{method: "POST", pattern: "/commands", write: true, access: mgmt, limit: smallMax, serve: (*Handler).commands},

	{method: "GET", pattern: "/containers", backend: containersBackend, access: mgmt, serve: (*Handler).containersList},
	{method: "PUT", pattern: "/containers/{}", backend: containersBackend, write: true, access: mgmt, limit: 1024, serve: (*Handler).containerAction},
	{method: "GET", pattern: "/groups", backend: containersBackend, access: mgmt, serve: (*Handler).groupsList},
	{method: "POST", pattern: "/signal", backend: containersBackend, write: true, access: anyone, limit: smallMax, serve: (*Handler).signal},
	{method: "GET", pattern: "/drivers", backend: driversBackend, access: mgmt, serve: (*Handler).driversList},
	{method: "PUT", pattern: "/drivers/load", backend: driversBackend, write: true, access: mgmt, serve: (*Handler).driversLoadAll},
	{method: "PUT", pattern: "/drivers/unload", backend: driversBackend, write: true, access: mgmt, serve: (*Handler).driversUnloadAll},
	{method: "PUT", pattern: "/drivers/{}/load", backend: driversBackend, write: true, access: mgmt, serve: (*Handler).driverLoad},
	{method: "PUT", pattern: "/drivers/{}/unload", backend: driversBackend, write: true, access: mgmt, serve: (*Handler).driverUnload},
	{method: "GET", pattern: "/xconnect-graph", backend: extrasBackend, access: mgmt, serve: (*Handler).xconnectGraph},
	{method: "GET", pattern: "/wakelocks", backend: extrasBackend, access: mgmt, serve: (*Handler).wakelocks},
})

func compile(rs []route) []route {
	for i := range rs {
		rs[i].segs = strings.Split(strings.TrimPrefix(rs[i].pattern, "/"), "/")
	}
	return rs
}

// match finds the route for segs and method. Literal segments win over
// {} (so /steps/locals/x is not /steps/{}/progress). When the path matches
// only under other methods, it returns those methods in allowed.
func match(segs []string, method string) (*route, []string, []string) {
	var best *route
	var bestArgs []string
	bestScore := -1
	methods := map[string]bool{}
	for i := range routes {
		rt := &routes[i]
		args, score, ok := matchSegs(rt.segs, segs)
		if !ok {
			continue
		}
		if rt.method != method {
			methods[rt.method] = true
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

// Routes lists "METHOD /pattern" of every route (for docs and tests).
func Routes() []string {
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = rt.method + " " + rt.pattern
	}
	return out
}
