package ctrl

import (
	"context"
	"net"
)

// connContext runs in http.Server's accept loop, before the connection
// is served: the peer is identified now and bound to the connection.
func (h *Handler) connContext(ctx context.Context, nc net.Conn) context.Context {
	caller, err := h.identify(nc)
	if h.accepted != nil {
		h.accepted(caller, err)
	}
	return context.WithValue(ctx, connKey{}, &connCaller{caller: caller, err: err})
}
