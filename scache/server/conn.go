package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/internal/fdpass"
	"golang.org/x/sys/unix"
)

// recState tells where the decoder stands in the current record after a
// scan, so that a reply can drop the unread rest of the record the way
// Postfix's single-buffered stream drops unread input when it starts
// writing.
type recState uint8

const (
	recDone    recState = iota // the record's terminator has been read
	recAtName                  // the next byte starts an attribute name
	recAtValue                 // an unexpected name was read, its value is next
)

// conn is one client connection. Only its own goroutine touches its fields,
// except idle and stop, which Shutdown uses.
type conn struct {
	srv *Server
	nc  net.Conn
	uc  *net.UnixConn // nc itself
	dl  deadlines
	dr  deadlineReader
	rio *rawIO // every read and write: raw system calls (rawio.go)
	br  *bufio.Reader
	bw  *bufio.Writer
	dec *attr.Decoder
	enc *attr.Encoder
	log *slog.Logger // per-connection, for Debug traces

	state    recState
	sawExtra bool // the last scan warned about an unexpected attribute
	broken   bool // a read or write failed: end the connection

	// The request path allocates nothing: the attributes of the four
	// scache requests are scanned into these buffers, which keep their
	// storage from one request to the next (a value is valid until the
	// next scan; what the cache keeps, it copies), with items built once.
	req, label, prop, label2 []byte
	dummy                    []byte
	ttl                      int
	itReq, itLabel, itDummy  []attr.Item // request; label (finds); dummy
	itSaveEndp, itSaveDest   []attr.Item
	hit                      [3]attr.Attr // a find hit's reply
	oob                      []byte       // descriptor control messages
	fds                      [fdpass.MaxRecvFDs]int

	idle atomic.Bool // waiting for the first byte of a request
	stop idleStop    // Shutdown ended the wait for a request
}

// idleStop lets Shutdown end a connection's wait for its next request
// without reading from it and without closing it (conn.endWait): closing
// could lose a request whose first bytes the idle read had just taken in.
// endWait arms a read deadline in the past; a read that got bytes returns
// them all the same, and that request is answered. mu orders endWait
// against the connection's own changes of its read deadline while idle
// (the retry without a deadline, leaving the idle state), so that neither
// undoes the other.
type idleStop struct {
	mu   sync.Mutex
	stop bool
}

// deadlines arms a connection's read and write deadlines. Postfix's timed
// stream arms ipc_timeout afresh before every read and write; goscache arms
// it again only when the deadline in force is more than 1/64 of the timeout
// older than a fresh one would be, so that every read and write inside a
// request still gets between 63/64 of ipc_timeout and all of it (at least
// 59 min 4 s of the default hour), never more. Setting a deadline is a
// timer operation in the Go runtime (about 0.65 µs on the bench machine,
// and smtp(8)'s cycle made some fifteen of them, with a clear before each
// idle wait), which cost more than decoding the requests (issue 18). For
// the same reason the read deadline is not cleared between requests: the
// idle wait retries without one if it expires (deadlineReader.Read).
type deadlines struct {
	nc     net.Conn
	rd, wd time.Time // the deadlines armed; zero: none
}

// freshen returns the deadline a read or write with timeout must have, and
// whether cur (updated) must be set again for it.
func freshen(cur *time.Time, timeout time.Duration) (time.Time, bool) {
	want := time.Now().Add(timeout)
	if !cur.IsZero() && want.Sub(*cur) <= timeout/64 {
		return *cur, false
	}
	*cur = want
	return want, true
}

// armRead makes sure the next read ends within timeout (see deadlines).
func (d *deadlines) armRead(timeout time.Duration) {
	if t, ok := freshen(&d.rd, timeout); ok {
		_ = d.nc.SetReadDeadline(t) // fails only on a closed connection, which the read reports
	}
}

// armWrite makes sure the next write ends within timeout.
func (d *deadlines) armWrite(timeout time.Duration) {
	if t, ok := freshen(&d.wd, timeout); ok {
		_ = d.nc.SetWriteDeadline(t) // fails only on a closed connection, which the write reports
	}
}

// clearRead removes the read deadline.
func (d *deadlines) clearRead() {
	if !d.rd.IsZero() {
		_ = d.nc.SetReadDeadline(time.Time{}) // fails only on a closed connection, which the read reports
		d.rd = time.Time{}
	}
}

// deadlineReader and deadlineWriter arm ipc_timeout before every read or
// write inside a request, as Postfix's timed stream does (see deadlines).
type deadlineReader struct {
	dl      *deadlines
	rio     *rawIO
	timeout time.Duration // 0: no deadline (idle between requests)
	stop    *idleStop
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	if r.timeout > 0 {
		r.dl.armRead(r.timeout)
	}
	for {
		n, err := r.rio.Read(p)
		if err == nil || r.timeout > 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !r.idleRetry() {
			return n, err
		}
	}
}

// idleRetry is called when the wait for the next request met a deadline:
// the one the last request left armed, which the wait does without, or the
// one Shutdown set to end it. It reports whether to wait again.
func (r *deadlineReader) idleRetry() bool {
	r.stop.mu.Lock()
	defer r.stop.mu.Unlock()
	if r.stop.stop {
		return false
	}
	if r.dl.rd.IsZero() {
		return false // a deadline nobody armed: give up as before
	}
	r.dl.clearRead()
	return true
}

type deadlineWriter struct {
	dl      *deadlines
	rio     *rawIO
	timeout time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.dl.armWrite(w.timeout)
	return w.rio.Write(p)
}

// errNotUnix refuses a connection that cannot carry descriptors.
var errNotUnix = errors.New("not a Unix-domain socket of this process, which the connection cache protocol needs to pass descriptors")

// newConn prepares the connection of a new client. The connection must be
// a Unix-domain socket of this process (*net.UnixConn), as every listener
// of scache is (master(8)'s inherited socket, the standalone socket): its
// reads, writes and descriptors all go through raw system calls
// (rawio.go). Another kind of connection gets errNotUnix.
func (s *Server) newConn(nc net.Conn) (*conn, error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("%T: %w", nc, errNotUnix)
	}
	rio := newRawIO(uc)
	if rio == nil {
		return nil, fmt.Errorf("%T without a raw connection: %w", nc, errNotUnix)
	}
	id := s.connID.Add(1)
	c := &conn{srv: s, nc: nc, uc: uc, rio: rio}
	c.idle.Store(true)
	c.dl = deadlines{nc: nc}
	c.dr = deadlineReader{dl: &c.dl, rio: c.rio, stop: &c.stop}
	c.br = bufio.NewReader(&c.dr)
	c.bw = bufio.NewWriter(&deadlineWriter{dl: &c.dl, rio: c.rio, timeout: s.opts.IPCTimeout})
	c.dec = attr.NewDecoder(c.br, attr.Format0, attr.Limits{})
	c.dec.Stream = streamName
	c.dec.Warn = c.scanWarn
	c.enc = attr.NewEncoder(c.bw, attr.Format0)
	c.log = s.logger.With("conn", id)
	c.itReq = []attr.Item{attr.WantStrBytes(scache.AttrReq, &c.req)}
	c.itLabel = []attr.Item{attr.WantStrBytes(scache.AttrLabel, &c.label)}
	c.itDummy = []attr.Item{attr.WantStrBytes(scache.AttrDummy, &c.dummy)}
	c.itSaveEndp = []attr.Item{attr.WantInt(scache.AttrTTL, &c.ttl), attr.WantStrBytes(scache.AttrLabel, &c.label), attr.WantStrBytes(scache.AttrProp, &c.prop)}
	c.itSaveDest = []attr.Item{attr.WantInt(scache.AttrTTL, &c.ttl), attr.WantStrBytes(scache.AttrLabel, &c.label), attr.WantStrBytes(scache.AttrProp, &c.prop), attr.WantStrBytes(scache.AttrLabel, &c.label2)}
	c.oob = make([]byte, unix.CmsgSpace(4*fdpass.MaxRecvFDs))
	return c, nil
}

// debug reports whether per-request Debug traces are logged. The traces
// are built only then: their arguments would allocate on every request.
func (c *conn) debug() bool {
	return c.log.Enabled(context.Background(), slog.LevelDebug)
}

// transient returns b's bytes as a string without copying them, for a
// callee that does not keep the string (a lookup, a comparison) or copies
// what it keeps, as the cache does (see cache.Cache). It is valid until b's
// next scan.
func transient(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// scanWarn logs a scanner warning with Postfix's text and notes whether the
// scanner stopped in front of an unread value.
func (c *conn) scanWarn(msg string) {
	if strings.HasPrefix(msg, "unexpected attribute ") {
		c.sawExtra = true
	}
	c.srv.logger.Warn(msg)
}

// serve runs the connection until the client leaves, a hard read error, or
// the server shuts down.
func (c *conn) serve() {
	busy := false
	defer func() {
		if r := recover(); r != nil {
			c.srv.logger.Error(fmt.Sprintf("panic serving client: %v", r), "stack", string(debug.Stack()))
		}
		if busy {
			c.srv.setBusy(false)
		}
		c.nc.Close()
		c.srv.trackConn(c, false)
		c.log.Debug("connection closed")
	}()
	c.log.Debug("connection established")
	if !c.srv.checkPeer(c.nc) {
		return
	}
	c.dr.timeout = c.srv.opts.IPCTimeout
	if !c.srv.opts.NoAnnouncement {
		if err := c.enc.Encode(announcement); err != nil {
			c.log.Debug("write announcement", "err", err)
			return
		}
	}
	for {
		if c.br.Buffered() == 0 {
			if busy {
				c.srv.setBusy(false)
				busy = false
			}
			if !c.setIdle(true) {
				return
			}
			c.dr.timeout = 0
			_, err := c.br.Peek(1)
			c.dr.timeout = c.srv.opts.IPCTimeout
			c.endIdle()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
					c.log.Debug("read", "err", err)
				}
				return
			}
			// A request has begun to arrive: it is answered even when
			// the server has begun to shut down meanwhile, as Postfix's
			// scache answers the request it has begun to read after
			// master(8) went away. Only a wait that read nothing ends.
		}
		if !busy {
			c.srv.setBusy(true)
			busy = true
		}
		if !c.serveRequest() {
			return
		}
	}
}

// setIdle records that the connection waits between requests. It fails
// once the server is closing: the connection must then end. One that goes
// idle just as Shutdown begins may not see it yet; Shutdown then finds it
// idle at its next poll and ends its wait (Server.waitConns, endWait).
func (c *conn) setIdle(idle bool) bool {
	c.idle.Store(idle)
	return !c.srv.closed()
}

// endIdle records that the wait for a request is over. From here on
// endWait leaves the connection alone; if it came first, the read deadline
// it armed is still in force, and the request's first armRead must replace
// it.
func (c *conn) endIdle() {
	c.stop.mu.Lock()
	defer c.stop.mu.Unlock()
	c.idle.Store(false)
	if c.stop.stop {
		c.dl.rd = time.Unix(1, 0)
	}
}

// endWait ends the connection's wait for its next request, if it is
// waiting, without reading from it (see idleStop). Shutdown calls it.
func (c *conn) endWait() {
	c.stop.mu.Lock()
	defer c.stop.mu.Unlock()
	if !c.idle.Load() {
		return
	}
	c.stop.stop = true
	_ = c.nc.SetReadDeadline(time.Unix(1, 0)) // a closed connection needs no waking
}

// scan runs one Scan of the current record and tracks where it stopped.
func (c *conn) scan(flags attr.Flags, items ...attr.Item) (int, error) {
	c.sawExtra = false
	n, err := c.dec.Scan(flags, items...)
	switch {
	case errors.Is(err, io.EOF):
		// Postfix's scanner returns 0 without a word at end of input.
		c.state = recDone
		return n, nil
	case err != nil:
		var se *attr.ScanError
		if errors.As(err, &se) {
			c.srv.logger.Warn(se.Msg)
		} else {
			c.srv.logger.Warn(err.Error())
		}
		c.state = recAtName
	case c.sawExtra:
		c.state = recAtValue
	case flags&attr.FlagMore != 0:
		c.state = recAtName
	default:
		c.state = recDone
	}
	return n, err
}

// fatal reports whether a scan error leaves the stream unusable: the peer
// is gone or silent, or a limit cut a string short.
func fatal(err error) bool {
	return err != nil && !errors.Is(err, attr.ErrMalformedInt)
}

// serveRequest reads the request attribute and dispatches. It reports
// whether the connection may go on.
func (c *conn) serveRequest() bool {
	n, err := c.scan(attr.FlagMore|attr.FlagStrict, c.itReq...)
	if err != nil {
		// Postfix answers nothing when the request attribute cannot be read.
		return false
	}
	if n != 1 {
		// No reply. An unexpected first attribute leaves its value unread;
		// like Postfix, the value is parsed next as the start of a record.
		return true
	}
	h, ok := c.srv.handlers[string(c.req)]
	if !ok {
		c.srv.logger.Warn("unrecognized request: \"" + string(c.req) + "\", ignored") // verbatim, as C prints %s
		return c.reply(replyStatusBad)
	}
	if c.debug() {
		c.log.Debug("request", "request", string(c.req))
	}
	start := time.Now()
	h(c)
	c.srv.latency.observe(transient(c.req), time.Since(start)) // c.req is not scanned again before the next request
	return !c.broken
}

// reply is send for a reply whose failure needs no more handling than the
// broken connection: it reports whether l was written.
func (c *conn) reply(l attr.List) bool { return c.send(l) == nil }

// send drops the unread rest of the current record, writes l and flushes.
// A write error marks the connection broken.
func (c *conn) send(l attr.List) error {
	c.dropRest()
	err := c.enc.Encode(l)
	if err != nil {
		c.log.Debug("write reply", "err", err)
		c.broken = true
	}
	return err
}

// dropRest discards the unread rest of the current record, as far as it is
// buffered. Postfix discards all buffered input when it starts writing a
// reply; goscache keeps complete requests that follow (they are answered)
// but drops the remains of the record being answered, so that scanner
// warnings stay the same. A part of the record that is not buffered yet is
// parsed later as a new record, as in Postfix.
func (c *conn) dropRest() {
	if c.state == recDone {
		return
	}
	buf, _ := c.br.Peek(c.br.Buffered())
	off := 0
	atValue := c.state == recAtValue
	c.state = recDone
	for {
		i := bytes.IndexByte(buf[off:], 0)
		if i < 0 {
			_, _ = c.br.Discard(len(buf)) // cannot fail: buf is what is buffered
			return
		}
		empty := i == 0
		off += i + 1
		if !atValue && empty {
			_, _ = c.br.Discard(off) // cannot fail: the bytes are buffered
			return
		}
		atValue = !atValue
	}
}
