//go:build !linux

package ctrl

import (
	"errors"
	"net"
)

type peer struct{ pid int }

// peerOf is only implemented on Linux (SO_PEERCRED).
func peerOf(net.Conn) (peer, error) {
	return peer{}, errors.New("peer credentials: only supported on linux")
}

func (peer) alive() bool { return false }
func (peer) close()      {}
