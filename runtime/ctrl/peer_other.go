//go:build !linux

package ctrl

import (
	"errors"
	"net"
)

// peerPid is only implemented on Linux (SO_PEERCRED).
func peerPid(net.Conn) (int, error) {
	return 0, errors.New("peer credentials: only supported on linux")
}
