package scache

import (
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// maxRecvFDs sizes the control buffer of a descriptor receive. A Postfix
// peer sends one descriptor; room for more lets the receiver take, and
// close, a few extra instead of relying on MSG_CTRUNC alone.
const maxRecvFDs = 8

// sendFD passes fd over uc the way Postfix's unix_send_fd does: one data
// byte 0x00 and one SCM_RIGHTS control message holding one int. The
// caller keeps fd and closes it.
func sendFD(uc *net.UnixConn, fd int) error {
	n, oobn, err := uc.WriteMsgUnix([]byte{0}, unix.UnixRights(fd), nil)
	if err != nil {
		return err
	}
	if n != 1 || oobn == 0 {
		return fmt.Errorf("scache: short descriptor message (%d data bytes, %d control bytes)", n, oobn)
	}
	return nil
}

// recvFD receives one descriptor message: exactly one data byte (its value
// is not checked, as Postfix's unix_recv_fd does not check it) and exactly
// one SCM_RIGHTS descriptor. The new descriptor is close-on-exec (Go adds
// MSG_CMSG_CLOEXEC) and owned by the caller. On any failure every
// descriptor that did arrive is closed: no data byte (EOF) or no
// descriptor gives ErrNoDescriptor, several descriptors or truncated
// control data give ErrTooManyDescriptors. The caller must make sure no
// user-space buffer holds unread bytes from uc.
func recvFD(uc *net.UnixConn) (int, error) {
	var buf [1]byte
	oob := make([]byte, unix.CmsgSpace(4*maxRecvFDs))
	n, oobn, flags, _, err := uc.ReadMsgUnix(buf[:], oob)
	fds, perr := parseRights(oob[:oobn])
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		closeAll(fds)
		return -1, err
	case perr != nil:
		closeAll(fds)
		return -1, perr
	case flags&unix.MSG_CTRUNC != 0 && len(fds) < maxRecvFDs:
		// The buffer had room: the kernel could not install a descriptor
		// in this process, which is almost always the descriptor limit.
		closeAll(fds)
		return -1, lostDescriptor()
	case flags&unix.MSG_CTRUNC != 0:
		closeAll(fds)
		return -1, fmt.Errorf("%w (control data truncated)", ErrTooManyDescriptors)
	case len(fds) > 1:
		closeAll(fds)
		return -1, fmt.Errorf("%w (%d descriptors)", ErrTooManyDescriptors, len(fds))
	case n == 0 || len(fds) == 0:
		closeAll(fds)
		return -1, ErrNoDescriptor
	}
	return fds[0], nil
}

// lostDescriptor explains a descriptor the kernel dropped on receipt
// (MSG_CTRUNC with room to spare): it tries to open a descriptor itself,
// and returns that errno (EMFILE, the process limit, or ENFILE, the
// system's) wrapped in ErrDescriptorDropped; when that works, the cause is
// unknown (a security module, or a limit that passed) and
// ErrDescriptorDropped comes alone. Called on failure paths only.
func lostDescriptor() error {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDescriptorDropped, err)
	}
	unix.Close(fd)
	return ErrDescriptorDropped
}

// parseRights returns every descriptor carried by SCM_RIGHTS messages in
// oob. Control messages of other types are ignored.
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("scache: parse control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		r, err := unix.ParseUnixRights(&m)
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("scache: parse descriptors: %w", err)
		}
		fds = append(fds, r...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
