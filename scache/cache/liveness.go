package cache

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// peekAlive reports whether a cached connection can still be used: its
// peer has neither closed it nor sent anything (an idle SMTP server says
// nothing until spoken to; a 421 timeout reply or a FIN ends the session).
// It peeks at one byte with MSG_PEEK|MSG_DONTWAIT, which consumes nothing
// and leaves the descriptor's flags alone. A descriptor that is not a
// socket (peerNotSocket: a client saved a pipe or a file), or a failure
// that says nothing about the peer, counts as alive: then the session is
// handed out, as Postfix would.
func peekAlive(fd int) peerState {
	// recvfrom(2) with no source address: unix.Recvfrom would allocate a
	// 112-byte sockaddr buffer on every find. A raw call: it cannot block
	// (MSG_DONTWAIT), and a counted one would wake the runtime's sysmon
	// (rawio.go).
	var b [1]byte
	for {
		_, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return peerAlive // nothing to read: the peer is quiet
		case 0:
			return peerDead // end of file, or unsolicited data
		case unix.ECONNRESET, unix.EPIPE, unix.ETIMEDOUT:
			return peerDead
		case unix.ENOTSOCK:
			return peerNotSocket
		}
		return peerAlive
	}
}

// peerState is what peekAlive found out about a cached descriptor.
type peerState uint8

const (
	peerAlive     peerState = iota // usable, as far as can be told
	peerDead                       // the peer closed or spoke
	peerNotSocket                  // not a socket: handed out, but counted
)
