// Package fdpass passes descriptors over Unix sockets the way Postfix's
// util/unix_send_fd.c and util/unix_recv_fd.c do: one data byte and one
// SCM_RIGHTS control message holding one descriptor. The client uses Send
// and Recv; the server's raw I/O (scache/server/rawio.go) builds its
// messages with PutRights and checks what it receives with TakeRights, on
// buffers of its own, so that it allocates nothing per descriptor.
package fdpass

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"unsafe"

	"github.com/goscache/goscache/scache"
	"golang.org/x/sys/unix"
)

// MaxRecvFDs sizes the control buffer of a descriptor receive. A Postfix
// peer sends one descriptor; room for more lets the receiver take, and
// close, a few extra instead of relying on MSG_CTRUNC alone.
const MaxRecvFDs = 8

// Send passes fd over uc the way Postfix's unix_send_fd does: one data
// byte 0x00 and one SCM_RIGHTS control message holding one int. The
// caller keeps fd and closes it.
func Send(uc *net.UnixConn, fd int) error {
	oob := PutRights(nil, fd)
	n, oobn, err := uc.WriteMsgUnix(dataByte[:], oob, nil)
	if err != nil {
		return err
	}
	if n != 1 || oobn == 0 {
		return ErrShortMessage
	}
	return nil
}

// ErrShortMessage reports a descriptor message the kernel took only
// part of.
const ErrShortMessage fdpassError = "scache: short descriptor message"

// fdpassError is the type of ErrShortMessage.
type fdpassError string

func (e fdpassError) Error() string { return string(e) }

// PutRights writes into oob (reallocated when shorter than
// unix.CmsgSpace(4)) the SCM_RIGHTS control message carrying fd and
// returns it.
func PutRights(oob []byte, fd int) []byte {
	space := unix.CmsgSpace(4)
	if len(oob) < space {
		oob = make([]byte, space)
	}
	oob = oob[:space]
	clear(oob)
	h := unix.Cmsghdr{Level: unix.SOL_SOCKET, Type: unix.SCM_RIGHTS}
	h.SetLen(unix.CmsgLen(4))
	putCmsghdr(oob, &h)
	binary.NativeEndian.PutUint32(oob[unix.CmsgLen(0):], uint32(int32(fd)))
	return oob
}

// Recv receives one descriptor message: exactly one data byte (its value
// is not checked, as Postfix's unix_recv_fd does not check it) and exactly
// one SCM_RIGHTS descriptor. The new descriptor is close-on-exec (Go adds
// MSG_CMSG_CLOEXEC) and owned by the caller. On any failure every
// descriptor that did arrive is closed: no data byte (EOF) or no
// descriptor gives scache.ErrNoDescriptor, several descriptors or truncated
// control data give scache.ErrTooManyDescriptors. The caller must make sure no
// user-space buffer holds unread bytes from uc.
func Recv(uc *net.UnixConn) (int, error) {
	oob := make([]byte, unix.CmsgSpace(4*MaxRecvFDs))
	var buf [1]byte
	n, oobn, flags, _, err := uc.ReadMsgUnix(buf[:], oob)
	return TakeRights(n, oob[:oobn], flags, err, nil)
}

// TakeRights checks the outcome of a descriptor receive (n data bytes,
// control data oob, recvmsg's flags, its error) as Recv describes, with
// fds[:0] as storage for the descriptors parsed, and returns the one
// descriptor or closes every one that arrived.
func TakeRights(n int, oob []byte, flags int, err error, fds []int) (int, error) {
	fds, perr := parseRights(oob, fds[:0])
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		closeAll(fds)
		return -1, err
	case perr != nil:
		closeAll(fds)
		return -1, perr
	case flags&unix.MSG_CTRUNC != 0 && len(fds) < MaxRecvFDs:
		// The buffer had room: the kernel could not install a descriptor
		// in this process, which is almost always the descriptor limit.
		closeAll(fds)
		return -1, lostDescriptor()
	case flags&unix.MSG_CTRUNC != 0:
		closeAll(fds)
		return -1, fmt.Errorf("%w (control data truncated)", scache.ErrTooManyDescriptors)
	case len(fds) > 1:
		closeAll(fds)
		return -1, fmt.Errorf("%w (%d descriptors)", scache.ErrTooManyDescriptors, len(fds))
	case n == 0 || len(fds) == 0:
		closeAll(fds)
		return -1, scache.ErrNoDescriptor
	}
	return fds[0], nil
}

// lostDescriptor explains a descriptor the kernel dropped on receipt
// (MSG_CTRUNC with room to spare): it tries to open a descriptor itself,
// and returns that errno (EMFILE, the process limit, or ENFILE, the
// system's) wrapped in scache.ErrDescriptorDropped; when that works, the cause is
// unknown (a security module, or a limit that passed) and
// scache.ErrDescriptorDropped comes alone. Called on failure paths only.
func lostDescriptor() error {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("%w: %w", scache.ErrDescriptorDropped, err)
	}
	unix.Close(fd)
	return scache.ErrDescriptorDropped
}

// parseRights appends to fds every descriptor carried by SCM_RIGHTS
// messages in oob and returns the result. Control messages of other types
// are ignored. On an error the descriptors found so far are closed.
func parseRights(oob []byte, fds []int) ([]int, error) {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			closeAll(fds)
			return fds[:0], fmt.Errorf("scache: parse control message: %w", err)
		}
		oob = rest
		if h.Level != unix.SOL_SOCKET || h.Type != unix.SCM_RIGHTS {
			continue
		}
		for ; len(data) >= 4; data = data[4:] {
			fds = append(fds, int(int32(binary.NativeEndian.Uint32(data))))
		}
	}
	return fds, nil
}

// dataByte is the data byte of a descriptor message (Postfix sends 0x00).
// Only ever read.
var dataByte = [1]byte{0}

// putCmsghdr writes h at the start of b in the kernel's layout.
func putCmsghdr(b []byte, h *unix.Cmsghdr) {
	copy(b, unsafe.Slice((*byte)(unsafe.Pointer(h)), unix.SizeofCmsghdr))
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
