package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/goscache/goscache/mastercompat"
)

// The floor is the least a server can do to answer smtp(8)'s cycle: one
// read per request record and one write per reply, a recvmsg per
// descriptor received and a sendmsg per descriptor handed out, all raw
// system calls on the netpoller's non-blocking socket exactly as goscache
// makes them (floor_rawio.go), and nothing else: no deadlines, no
// attribute decoder, no cache, no liveness check of what it hands out, no
// logging, and no allocation on any request of the cycle
// (TestFloor_requestAllocs). Each connection holds the last descriptor it
// received and hands it to the next find request; labels are not looked
// at. It is a master(8) child with the same status-record policy as
// goscache (mastercompat). Its cycle time is the system-call and scheduling
// cost that any Go server under master(8) pays, so goscache/floor is what
// goscache's own work (decoding, the cache, deadlines, checks) costs.

// Wire records the floor writes (format 0).
var (
	floorAnnounce = []byte("protocol\x00connection_cache_protocol\x00\x00")
	floorDummy    = []byte("dummy\x00\x00\x00")
	floorStatus0  = []byte("status\x000\x00\x00")
	floorStatus1  = []byte("status\x001\x00\x00")
	floorStatus2  = []byte("status\x002\x00\x00")
	floorEndpMiss = []byte("status\x002\x00property\x00\x00\x00")
	floorDestMiss = []byte("status\x002\x00property\x00\x00property\x00\x00\x00")
)

// floorServer serves the floor on a listener.
type floorServer struct {
	// notify, if not nil, is called when the number of requests in flight
	// goes 0->1 (true) and 1->0 (false), as goscache's Server calls its
	// Busy hook to write master(8) status records.
	notify   func(busy bool)
	inFlight atomic.Int32
}

// serveFloorPath serves the floor on a new socket at path until ctx is
// done. With status set, the floor writes 12-byte status records to a pipe
// that a goroutine drains; under master(8) use serveFloorMaster instead.
func serveFloorPath(ctx context.Context, path string, status bool, stderr io.Writer) error {
	l, fs, done, err := newFloorPath(path, status)
	if err != nil {
		return err
	}
	defer done()
	fmt.Fprintf(stderr, "floor: serving %s\n", path)
	return serveFloorOn(ctx, l, fs)
}

// newFloorPath creates the floor's socket at path, open to every user, and
// the floor server (with its status pipe when status is set). Clients may
// connect as soon as it returns; done releases the socket and the pipe.
func newFloorPath(path string, status bool) (l *net.UnixListener, fs *floorServer, done func(), err error) {
	os.Remove(path)
	l, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bench: floor: %w", err)
	}
	_ = os.Chmod(path, 0o666) // best effort: a client of another user then fails to connect
	fs = &floorServer{}
	done = func() { os.Remove(path) }
	if !status {
		return l, fs, done, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		l.Close()
		done()
		return nil, nil, nil, fmt.Errorf("bench: floor: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, r) }() // drains the flow pipe until the process exits
	var mu sync.Mutex
	pid := int32(os.Getpid())
	fs.notify = func(busy bool) {
		avail := int32(mastercompat.StatusAvail)
		if busy {
			avail = mastercompat.StatusTaken
		}
		rec := mastercompat.AppendRecord(make([]byte, 0, mastercompat.RecordSize), pid, 1, avail)
		mu.Lock()
		_, _ = w.Write(rec) // as master_notify, a failed status write changes nothing here
		mu.Unlock()
	}
	return l, fs, func() {
		w.Close()
		r.Close()
		os.Remove(path)
	}, nil
}

// serveFloorOn serves fs on l until ctx is done.
func serveFloorOn(ctx context.Context, l *net.UnixListener, fs *floorServer) error {
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	err := fs.serve(l)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// floorService is the floor as a master(8) service: the skeleton's
// parameters only, nothing of its own.
var floorService = mastercompat.Service{Name: "floor"}

// serveFloorMaster serves the floor as a master(8) child, so that it pays
// for the status channel exactly as goscache does: it starts through
// mastercompat.Start with master's argv (argv[0] included), as goscache
// does (arguments, environment, main.cf, log, descriptors, chroot and
// privileges as -c and -u ask), writes its status records with the
// child's Master, and returns when master goes away or ctx is done.
func serveFloorMaster(ctx context.Context, o mastercompat.StartOptions) error {
	child, err := mastercompat.Start(ctx, floorService, o)
	if err != nil {
		return err
	}
	defer child.Close()
	if len(child.Listeners) == 0 {
		return child.Fatal(ctx, errors.New("floor: master passed no listener"))
	}
	for _, l := range child.Listeners[1:] {
		l.Close()
	}
	l, ok := child.Listeners[0].(*net.UnixListener)
	if !ok {
		child.Listeners[0].Close()
		return child.Fatal(ctx, fmt.Errorf("floor: inherited listener is %T, want a UNIX socket", child.Listeners[0]))
	}
	m := child.Master
	// As goscache: with a process limit of 1 (-l, which Start requires;
	// bench-compare's master.cf gives the floor one too), the first
	// TAKEN/AVAIL pair only.
	m.Solitary = child.Args.Alone
	fs := &floorServer{notify: func(busy bool) { _ = m.Busy(busy) }} // master gone: Gone, watched below, ends the run
	go func() {
		select {
		case <-m.Gone():
		case <-ctx.Done():
		}
		l.Close()
	}()
	return fs.serve(l)
}

// serve accepts connections until l is closed.
func (fs *floorServer) serve(l *net.UnixListener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	conns := map[*net.UnixConn]struct{}{}
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("bench: floor: %w", err)
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			fs.serveConn(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		})
	}
}

// busy counts requests in flight and calls notify on the 0->1 and 1->0
// transitions.
func (fs *floorServer) busy(delta int32) {
	if fs.notify == nil {
		return
	}
	n := fs.inFlight.Add(delta)
	if delta > 0 && n == 1 {
		fs.notify(true)
	} else if delta < 0 && n == 0 {
		fs.notify(false)
	}
}

// floorConn is one client of the floor.
type floorConn struct {
	io       *floorIO
	r        *bufio.Reader
	held     int    // last descriptor received, -1 if none
	destProp []byte // last save_dest property, handed back on a hit
	endpProp []byte // last save_endp property
	req      []byte // the request name of the record being read
	prop     []byte // its last property
	out      []byte // a find hit's reply, built here
}

// newFloorConn returns the floor's state for connection c.
func newFloorConn(c *net.UnixConn) (*floorConn, error) {
	rio, err := newFloorIO(c)
	if err != nil {
		return nil, err
	}
	return &floorConn{io: rio, r: bufio.NewReader(rio), held: -1}, nil
}

// serveConn answers requests until the client goes away or breaks the
// protocol.
func (fs *floorServer) serveConn(c *net.UnixConn) {
	fc, err := newFloorConn(c)
	if err != nil {
		return
	}
	defer fc.close()
	if _, err := fc.io.Write(floorAnnounce); err != nil {
		return
	}
	for {
		if _, err := fc.r.Peek(1); err != nil {
			return
		}
		fs.busy(1)
		err := fc.request()
		fs.busy(-1)
		if err != nil {
			return
		}
	}
}

// close releases the descriptor held, if any.
func (fc *floorConn) close() {
	if fc.held >= 0 {
		floorClose(fc.held)
		fc.held = -1
	}
}

// request reads one record and answers it.
func (fc *floorConn) request() error {
	req, prop, err := fc.readRequest()
	if err != nil {
		return err
	}
	switch string(req) {
	case "find_dest", "find_endp":
		return fc.find(string(req) == "find_dest")
	case "save_dest":
		fc.destProp = append(fc.destProp[:0], prop...)
		return fc.reply(floorStatus0)
	case "save_endp":
		return fc.saveEndp(prop)
	}
	return fc.reply(floorStatus1)
}

// readRequest reads one record: the request name (the first attribute's,
// if it is "request") and the last property. Both are valid until the next
// call: they live in fc's buffers, so that a request allocates nothing.
func (fc *floorConn) readRequest() (req, prop []byte, err error) {
	fc.req, fc.prop = fc.req[:0], fc.prop[:0]
	for i := 0; ; i++ {
		name, err := fc.field()
		if err != nil {
			return nil, nil, err
		}
		if len(name) == 0 {
			return fc.req, fc.prop, nil
		}
		// name is only valid until the next read: compare it now.
		isReq, isProp := string(name) == "request", string(name) == "property"
		val, err := fc.field()
		if err != nil {
			return nil, nil, err
		}
		switch {
		case isReq && i == 0:
			fc.req = append(fc.req, val...)
		case isProp:
			fc.prop = append(fc.prop[:0], val...)
		}
	}
}

// find answers find_dest or find_endp: a miss, or the connection held
// with the properties saved, handed over between the two dummy records.
func (fc *floorConn) find(dest bool) error {
	if fc.held < 0 {
		if dest {
			return fc.reply(floorDestMiss)
		}
		return fc.reply(floorEndpMiss)
	}
	b := append(fc.out[:0], "status\x000\x00"...)
	if dest {
		b = append(b, "property\x00"...)
		b = append(b, fc.destProp...)
		b = append(b, 0)
	}
	b = append(b, "property\x00"...)
	b = append(b, fc.endpProp...)
	b = append(b, 0, 0)
	fc.out = b
	if err := fc.reply(b); err != nil {
		return err
	}
	if err := fc.skipRecord(); err != nil { // dummy
		return err
	}
	if fc.r.Buffered() > 0 {
		return errors.New("floor: data buffered before a descriptor hand-out")
	}
	fd := fc.held
	fc.held = -1
	err := fc.io.sendFD(fd)
	floorClose(fd)
	if err != nil {
		return err
	}
	return fc.skipRecord() // dummy after the descriptor
}

// saveEndp answers save_endp: the dummy record, then it takes the
// descriptor and holds it (one at a time) with its properties.
func (fc *floorConn) saveEndp(prop []byte) error {
	if err := fc.reply(floorDummy); err != nil {
		return err
	}
	if fc.r.Buffered() > 0 {
		return errors.New("floor: data buffered before a descriptor")
	}
	fd, err := fc.io.recvFD()
	if err != nil {
		return err
	}
	if fd < 0 {
		return fc.reply(floorStatus2)
	}
	if fc.held >= 0 {
		floorClose(fc.held)
	}
	fc.held = fd
	fc.endpProp = append(fc.endpProp[:0], prop...)
	return fc.reply(floorStatus0)
}

// field reads one NUL-terminated name or value; the slice is valid until
// the next read.
func (fc *floorConn) field() ([]byte, error) {
	b, err := fc.r.ReadSlice(0)
	if err != nil {
		return nil, err
	}
	return b[:len(b)-1], nil
}

// skipRecord reads one record and discards it.
func (fc *floorConn) skipRecord() error {
	for {
		name, err := fc.field()
		if err != nil {
			return err
		}
		if len(name) == 0 {
			return nil
		}
		if _, err := fc.field(); err != nil {
			return err
		}
	}
}

// reply writes b in one write.
func (fc *floorConn) reply(b []byte) error {
	_, err := fc.io.Write(b)
	return err
}
