//go:build !linux

package sfu

import (
	"errors"
	"net"
)

var errNoMmsg = errors.New("sfu: no recvmmsg/sendmmsg on this system")

func newMmsgReader(*net.UDPConn) (batchReader, error)              { return nil, errNoMmsg }
func newMmsgWriter(*net.UDPConn, func(error)) (batchWriter, error) { return nil, errNoMmsg }
