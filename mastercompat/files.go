package mastercompat

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Descriptor numbers that master(8) sets up in every child
// (master/master_proto.h).
const (
	flowReadFD  = 3 // MASTER_FLOW_READ: shared flow-control pipe, read end
	flowWriteFD = 4 // MASTER_FLOW_WRITE: shared flow-control pipe, write end
	statusFD    = 5 // MASTER_STATUS_FD: this service's status socketpair
	listenFD    = 6 // MASTER_LISTEN_FD: the first listen socket
)

// masterFiles are the descriptors a child inherits from master.
type masterFiles struct {
	Status    *os.File   // fd 5; the caller owns it (see newMaster)
	Listeners []*os.File // fds 6 .. 6+n-1; the caller owns them (see netListeners)
}

// inheritedFiles takes over the descriptors master passed: it marks the
// flow pipe (3, 4), the status channel (5) and socketCount listen sockets
// from fd 6 close-on-exec, as multi_server_main does, and wraps 5 and the
// listeners in *os.File. The flow pipe is otherwise left alone: it is
// shared by every Postfix daemon and its flags must not change. It fails if
// any of fds 5 .. 5+socketCount is not open.
func inheritedFiles(socketCount int) (masterFiles, error) {
	if socketCount < 1 {
		return masterFiles{}, fmt.Errorf("mastercompat: invalid socket count %d", socketCount)
	}
	for fd := flowReadFD; fd < listenFD+socketCount; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			if fd < statusFD { // the flow pipe is optional (not used by multi-servers)
				continue
			}
			return masterFiles{}, fmt.Errorf("mastercompat: inherited descriptor %d: %w", fd, err)
		}
		unix.CloseOnExec(fd)
	}
	// The status channel is non-blocking so that a read waiting for
	// master's EOF goes through the runtime poller and can be interrupted.
	// Only this service's children share it, so this affects no one else.
	if err := unix.SetNonblock(statusFD, true); err != nil {
		return masterFiles{}, fmt.Errorf("mastercompat: status descriptor: %w", err)
	}
	f := masterFiles{Status: os.NewFile(statusFD, "master status")}
	for i := range socketCount {
		f.Listeners = append(f.Listeners, os.NewFile(uintptr(listenFD+i), fmt.Sprintf("master listener %d", i)))
	}
	return f, nil
}

// netListeners turns inherited listen sockets into net.Listeners (UNIX or TCP,
// whatever the socket is). The files are closed: each listener holds its
// own duplicate. On error, every listener made so far is closed too.
func netListeners(files []*os.File) ([]net.Listener, error) {
	var (
		ls   []net.Listener
		errs []error
	)
	for _, f := range files {
		l, err := net.FileListener(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("mastercompat: listener %s: %w", f.Name(), err))
		} else {
			ls = append(ls, l)
		}
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("mastercompat: close %s: %w", f.Name(), err))
		}
	}
	if err := joinErrors(errs...); err != nil {
		for _, l := range ls {
			l.Close()
		}
		return nil, err
	}
	return ls, nil
}
