package scache

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// PeerAddr returns the remote address of socket fd: "127.0.0.1:25",
// "[::1]:25", "unix:/path", or "unix" for an unnamed Unix socket (such as
// tlsproxy's). It returns "" when fd is not a connected socket. It only
// calls getpeername(2), which changes nothing on the descriptor.
//
// The server looks up cached descriptors after the snapshot is taken and
// the cache lock released, so a session that expires in between may show
// "" or, if its descriptor number was reused at once, the peer of another
// socket. The cache itself is never affected.
func PeerAddr(fd int) string {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return ""
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrUnix:
		if a.Name == "" || a.Name == "@" { // x/sys shows an unnamed socket as "@"
			return "unix"
		}
		return "unix:" + a.Name
	}
	return ""
}
