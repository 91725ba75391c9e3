package main

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The floor's socket I/O is goscache's (scache's raw I/O, copied down to
// what the floor needs): each read, write, recvmsg and sendmsg is one
// syscall.RawSyscall on the non-blocking socket, through its
// syscall.RawConn, so that the netpoller still waits for readiness but the
// runtime does not treat the call as one that may block (no entersyscall,
// so sysmon is not woken at the start of every request). Unlike goscache,
// the floor arms no deadline: RawConn.Read and Write wait as long as it
// takes.

// floorMaxFDs sizes the control buffer of a descriptor receive, as
// goscache's does: room for a few descriptors more than the one expected,
// so that extra ones are received and closed rather than truncated.
const floorMaxFDs = 8

// floorIO is one connection's raw I/O. Its callbacks are method values
// made once per connection, so an operation allocates nothing.
type floorIO struct {
	rc syscall.RawConn

	p     []byte // read into / write from
	off   int    // bytes written so far
	n     int    // bytes read
	errno syscall.Errno

	msg      unix.Msghdr // recvmsg/sendmsg: one data byte, control data
	iov      unix.Iovec
	data     [1]byte
	oobn     int
	msgFlags int
	rcvOOB   []byte // unix.CmsgSpace(4*floorMaxFDs)
	sndOOB   []byte // unix.CmsgSpace(4)

	readFn, writeFn, recvmsgFn, sendmsgFn func(fd uintptr) bool
}

// errFloorShortFD reports a descriptor message the kernel took only part
// of.
var errFloorShortFD = errors.New("floor: short descriptor message")

// newFloorIO returns c's raw I/O.
func newFloorIO(c *net.UnixConn) (*floorIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &floorIO{rc: rc, rcvOOB: make([]byte, unix.CmsgSpace(4*floorMaxFDs)), sndOOB: make([]byte, unix.CmsgSpace(4))}
	r.readFn, r.writeFn, r.recvmsgFn, r.sendmsgFn = r.read, r.write, r.recvmsg, r.sendmsg
	r.iov.Base = &r.data[0]
	r.iov.SetLen(1)
	r.msg.Iov = &r.iov
	r.msg.SetIovlen(1)
	return r, nil
}

// floorRetry makes one non-blocking system call, again after EINTR; again
// reports EAGAIN (the netpoller then waits and the callback runs anew).
func floorRetry(trap, a1, a2, a3 uintptr) (n uintptr, errno syscall.Errno, again bool) {
	for {
		n, _, e := syscall.RawSyscall(trap, a1, a2, a3)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, 0, true
		}
		return n, e, false
	}
}

func (r *floorIO) read(fd uintptr) bool {
	n, e, again := floorRetry(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.p))), uintptr(len(r.p)))
	if again {
		return false
	}
	r.n, r.errno = int(n), e
	return true
}

// Read reads into p: io.EOF at the end of the stream.
func (r *floorIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.errno = p, 0, 0
	err := r.rc.Read(r.readFn)
	r.p = nil
	switch {
	case err != nil:
		return 0, err
	case r.errno != 0:
		return 0, os.NewSyscallError("read", r.errno)
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

func (r *floorIO) write(fd uintptr) bool {
	for r.off < len(r.p) {
		rest := r.p[r.off:]
		n, e, again := floorRetry(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(rest))), uintptr(len(rest)))
		if again {
			return false
		}
		if e != 0 {
			r.errno = e
			return true
		}
		r.off += int(n)
	}
	return true
}

// Write writes all of p.
func (r *floorIO) Write(p []byte) (int, error) {
	r.p, r.off, r.errno = p, 0, 0
	err := r.rc.Write(r.writeFn)
	n := r.off
	r.p = nil
	switch {
	case err != nil:
		return n, err
	case r.errno != 0:
		return n, os.NewSyscallError("write", r.errno)
	}
	return n, nil
}

func (r *floorIO) recvmsg(fd uintptr) bool {
	r.msg.Control = &r.rcvOOB[0]
	r.msg.SetControllen(len(r.rcvOOB))
	n, e, again := floorRetry(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), unix.MSG_CMSG_CLOEXEC)
	if again {
		return false
	}
	r.n, r.errno = int(n), e
	if e == 0 {
		r.oobn, r.msgFlags = int(r.msg.Controllen), int(r.msg.Flags)
	}
	return true
}

// recvFD receives one descriptor message: one data byte and exactly one
// SCM_RIGHTS descriptor, which the caller then owns. Anything else closes
// every descriptor that came and returns -1 (with a nil error when the
// connection itself is fine).
func (r *floorIO) recvFD() (int, error) {
	r.n, r.oobn, r.msgFlags, r.errno = 0, 0, 0, 0
	err := r.rc.Read(r.recvmsgFn)
	r.msg.Control = nil
	switch {
	case err != nil:
		return -1, err
	case r.errno != 0:
		return -1, os.NewSyscallError("recvmsg", r.errno)
	}
	var fds [floorMaxFDs]int
	nfd := 0
	oob := r.rcvOOB[:r.oobn]
	for len(oob) > 0 {
		h, data, rest, perr := unix.ParseOneSocketControlMessage(oob)
		if perr != nil {
			break
		}
		oob = rest
		if h.Level != unix.SOL_SOCKET || h.Type != unix.SCM_RIGHTS {
			continue
		}
		for ; len(data) >= 4 && nfd < len(fds); data = data[4:] {
			fds[nfd] = int(int32(binary.NativeEndian.Uint32(data)))
			nfd++
		}
	}
	if r.n == 1 && nfd == 1 && r.msgFlags&unix.MSG_CTRUNC == 0 {
		return fds[0], nil
	}
	for _, fd := range fds[:nfd] {
		floorClose(fd)
	}
	if r.n == 0 {
		return -1, io.EOF
	}
	return -1, nil
}

func (r *floorIO) sendmsg(fd uintptr) bool {
	r.msg.Control = &r.sndOOB[0]
	r.msg.SetControllen(len(r.sndOOB))
	n, e, again := floorRetry(syscall.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&r.msg)), unix.MSG_NOSIGNAL)
	if again {
		return false
	}
	r.n, r.errno = int(n), e
	return true
}

// sendFD sends fd as Postfix's unix_send_fd does: one data byte 0x00 and
// one SCM_RIGHTS control message holding fd. The caller keeps fd.
func (r *floorIO) sendFD(fd int) error {
	clear(r.sndOOB)
	h := unix.Cmsghdr{Level: unix.SOL_SOCKET, Type: unix.SCM_RIGHTS}
	h.SetLen(unix.CmsgLen(4))
	copy(r.sndOOB, unsafe.Slice((*byte)(unsafe.Pointer(&h)), unix.SizeofCmsghdr))
	binary.NativeEndian.PutUint32(r.sndOOB[unix.CmsgLen(0):], uint32(int32(fd)))
	r.data[0] = 0
	r.n, r.errno = 0, 0
	err := r.rc.Write(r.sendmsgFn)
	r.msg.Control = nil
	switch {
	case err != nil:
		return err
	case r.errno != 0:
		return os.NewSyscallError("sendmsg", r.errno)
	case r.n != 1:
		return errFloorShortFD
	}
	return nil
}

// floorClose closes a descriptor with a raw close(2), as goscache closes
// a connection it handed out: a socket's close does not block.
func floorClose(fd int) {
	_, _, _ = syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0) // close(2) releases the descriptor even when it reports an error
}
