package server

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"github.com/goscache/goscache/scache/internal/fdpass"
	"golang.org/x/sys/unix"
)

// The connection's reads, writes and descriptor messages are made with
// raw system calls (syscall.RawSyscall) through the socket's
// syscall.RawConn, on the non-blocking socket the netpoller waits on, as
// net.Conn does. The difference: the Go runtime does not count a raw call
// as a system call that may block (no entersyscall), and that is what wakes
// its sysmon thread each time a request arrives after every P went idle (a
// futex wake-up, then sysmon polling every 20 µs for the rest of the
// request). With one client that was a third of goscache's CPU time per
// request (perf, issue 14). A non-blocking socket call never blocks, so
// nothing is lost by not telling the runtime. Readiness and deadlines are
// still the netpoller's (RawConn.Read and Write wait on EAGAIN and honour
// SetReadDeadline and SetWriteDeadline).
//
// This is the server's only I/O path: there is no fallback to net.Conn's
// Read and Write. Every listener scache has yields *net.UnixConn, which
// always has a RawConn (master(8)'s inherited socket, which
// mastercompat.Listeners turns into a *net.UnixListener; the standalone
// socket; a socket-activated one would be the same), and the protocol
// needs a Unix-domain socket anyway to pass descriptors. A connection of
// another kind is refused (Server.newConn).

// rawIO runs one raw operation on a connection. Its callbacks are method
// values made once per connection, so an operation allocates nothing.
type rawIO struct {
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

	readFn, writeFn, recvmsgFn, sendmsgFn func(fd uintptr) bool
}

// newRawIO returns nc's raw I/O, or nil when nc is not a socket of this
// process (then the Server refuses the connection, see newConn).
func newRawIO(nc net.Conn) *rawIO {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.readFn, r.writeFn, r.recvmsgFn, r.sendmsgFn = r.read, r.write, r.recvmsg, r.sendmsg
	r.iov.Base = &r.data[0]
	r.iov.SetLen(1)
	r.msg.Iov = &r.iov
	r.msg.SetIovlen(1)
	return r
}

// rawRetry makes one non-blocking system call, again after EINTR. again
// reports EAGAIN: the caller returns false so that the netpoller waits for
// readiness and calls it anew.
func rawRetry(trap, a1, a2, a3 uintptr) (n uintptr, errno syscall.Errno, again bool) {
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

// done records a finished call's byte count, or its errno, and tells the
// netpoller that the operation is over.
func (r *rawIO) done(n uintptr, e syscall.Errno) bool {
	if e != 0 {
		r.errno = e
	} else {
		r.n = int(n)
	}
	return true
}

func (r *rawIO) read(fd uintptr) bool {
	n, e, again := rawRetry(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.p))), uintptr(len(r.p)))
	if again {
		return false
	}
	return r.done(n, e)
}

// Read reads into p like net.Conn.Read: io.EOF at the end of the stream,
// the netpoller's error (a deadline, a closed connection) as net wraps it.
func (r *rawIO) Read(p []byte) (int, error) {
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
		return 0, &net.OpError{Op: "read", Net: "unix", Err: os.NewSyscallError("read", r.errno)}
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

func (r *rawIO) write(fd uintptr) bool {
	for r.off < len(r.p) {
		rest := r.p[r.off:]
		n, e, again := rawRetry(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(rest))), uintptr(len(rest)))
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

// Write writes all of p like net.Conn.Write.
func (r *rawIO) Write(p []byte) (int, error) {
	r.p, r.off, r.errno = p, 0, 0
	err := r.rc.Write(r.writeFn)
	n := r.off
	r.p = nil
	switch {
	case err != nil:
		return n, err
	case r.errno != 0:
		return n, &net.OpError{Op: "write", Net: "unix", Err: os.NewSyscallError("write", r.errno)}
	}
	return n, nil
}

func (r *rawIO) recvmsg(fd uintptr) bool {
	r.msg.SetControllen(len(r.p))
	n, e, again := rawRetry(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), unix.MSG_CMSG_CLOEXEC)
	if again {
		return false
	}
	if e != 0 {
		r.errno = e
		return true
	}
	r.n, r.oobn, r.msgFlags = int(n), int(r.msg.Controllen), int(r.msg.Flags)
	return true
}

// recvFD receives a descriptor message into oob, with recvFD's checks
// (fdpass.go); fds (capacity fdpass.MaxRecvFDs) holds the descriptors parsed.
func (r *rawIO) recvFD(oob []byte, fds []int) (int, error) {
	r.p, r.n, r.oobn, r.msgFlags, r.errno = oob, 0, 0, 0, 0
	r.msg.Control = &oob[0]
	err := r.rc.Read(r.recvmsgFn)
	r.p, r.msg.Control = nil, nil
	if err == nil && r.errno != 0 {
		err = &net.OpError{Op: "read", Net: "unix", Err: os.NewSyscallError("recvmsg", r.errno)}
	}
	if err == nil && r.n == 0 {
		err = io.EOF
	}
	return fdpass.TakeRights(r.n, oob[:r.oobn], r.msgFlags, err, fds)
}

func (r *rawIO) sendmsg(fd uintptr) bool {
	r.msg.SetControllen(len(r.p))
	n, e, again := rawRetry(syscall.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&r.msg)), unix.MSG_NOSIGNAL)
	if again {
		return false
	}
	return r.done(n, e)
}

// sendFD sends fd as sendFD does (fdpass.go), with oob as the control
// buffer.
func (r *rawIO) sendFD(fd int, oob []byte) error {
	oob = fdpass.PutRights(oob, fd)
	r.data[0] = 0
	r.p, r.n, r.errno = oob, 0, 0
	r.msg.Control = &oob[0]
	err := r.rc.Write(r.sendmsgFn)
	r.p, r.msg.Control = nil, nil
	switch {
	case err != nil:
		return err
	case r.errno != 0:
		return &net.OpError{Op: "write", Net: "unix", Err: os.NewSyscallError("sendmsg", r.errno)}
	case r.n != 1:
		return fdpass.ErrShortMessage
	}
	return nil
}

// closeRaw closes a descriptor with a raw close(2): a socket's close does
// not block (no SO_LINGER on the connections smtp(8) caches).
func closeRaw(fd int) error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0); e != 0 {
		return e
	}
	return nil
}
