// Package client is the client side of Postfix's connection cache
// protocol, as global/scache_clnt.c speaks it: a [Client] sends the four
// requests, checks every reply strictly and passes descriptors with the
// Linux handshakes; it also asks goscache's read-only extension requests
// ([Client.ServerStats], [Client.Dump]). The wire vocabulary is package
// scache's.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"syscall"
	"time"

	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/internal/fdpass"
)

// DefaultTimeout bounds every read and write of a Client
// (connection_cache_protocol_timeout).
const DefaultTimeout = 5 * time.Second

// Client talks to an scache(8) server the way Postfix's scache_clnt does:
// every request and reply is checked strictly, and descriptors travel with
// the Linux handshakes (dummy records around every descriptor). Unlike
// scache_clnt it never reconnects or retries: errors are returned. A
// Client is not safe for concurrent use.
//
// Every method returns an error only for a communication or protocol
// failure; a reply with status [scache.StatusBad] or [scache.StatusFail]
// is a normal outcome with a nil error.
type Client struct {
	// Timeout bounds every read and write, and the wait for a
	// descriptor. Zero means DefaultTimeout.
	Timeout time.Duration

	uc  *net.UnixConn
	br  *bufio.Reader
	bw  *bufio.Writer
	dec *attr.Decoder
	enc *attr.Encoder

	// greeted: the start of the server's output has been read, and with
	// it the announcement if there was one (announced).
	greeted, announced bool
}

// Dial connects to the server socket at path. It does not wait for the
// server's protocol announcement: see [New].
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	c, err := New(nc.(*net.UnixConn))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// New returns a client on a connection that has just been established.
// The Client owns uc and closes it in Close.
//
// It does not wait for the server to speak first: Postfix 3.6 and later
// (and goscache by default) announce protocol=connection_cache_protocol on
// accept, Postfix 3.5 sends nothing until it has a request to answer. The
// announcement, when there is one, is read and checked just before the
// first reply, where it is told apart from a reply by its first byte
// (a reply starts with "status" or "dummy"); [Client.Announced] then says
// which kind of server it was. A wrong protocol name fails the first
// request with an error wrapping [ErrAnnouncement] and
// [attr.ErrUnexpectedValue], and a server that closes the connection
// before sending anything (goscache does that to users it does not admit)
// fails it with one wrapping ErrAnnouncement and [io.ErrUnexpectedEOF].
func New(uc *net.UnixConn) (*Client, error) {
	c := &Client{uc: uc}
	c.br = bufio.NewReader(uc)
	c.bw = bufio.NewWriter(uc)
	c.dec = attr.NewDecoder(c.br, attr.Format0, attr.Limits{})
	c.dec.Stream = "private/scache"
	c.enc = attr.NewEncoder(c.bw, attr.Format0)
	return c, nil
}

// ErrAnnouncement wraps a Client's failure to read the start of the
// server's output: a wrong protocol announcement (the error also wraps
// attr.ErrUnexpectedValue), or a connection closed or timed out before the
// server sent anything.
const ErrAnnouncement clientError = "scache: read announcement"

// clientError is the type of the package's error constants, which no
// importer can change.
type clientError string

func (e clientError) Error() string { return string(e) }

// Announced reports whether the server announced its protocol (Postfix
// 3.6 and later, goscache unless told to speak 3.5's protocol). It is
// known once a first reply has been read, and false before.
func (c *Client) Announced() bool { return c.announced }

// greet reads the announcement if the server sent one; it runs once,
// before the first reply is read. The deadline is already set.
func (c *Client) greet() error {
	if c.greeted {
		return nil
	}
	b, err := c.br.Peek(1)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		} else if closedByPeer(err) {
			err = fmt.Errorf("%w (%w)", io.ErrUnexpectedEOF, err)
		}
		return fmt.Errorf("%w: %w", ErrAnnouncement, err)
	}
	c.greeted = true
	if b[0] != scache.AttrProtocol[0] {
		return nil // Postfix 3.5: the reply comes first
	}
	// A matching WantStrEq does not count: Scan reports 0 items.
	if _, err := c.dec.Scan(attr.FlagStrict, attr.WantStrEq(scache.AttrProtocol, scache.ProtocolName)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w: %w", ErrAnnouncement, err)
	}
	c.announced = true
	return nil
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Client) deadline() {
	_ = c.uc.SetDeadline(time.Now().Add(c.timeout())) // fails only on a closed connection, which the next read or write reports
}

// Close closes the connection.
func (c *Client) Close() error { return c.uc.Close() }

func (c *Client) send(l attr.List) error {
	c.deadline()
	if err := c.enc.Encode(l); err != nil {
		if !c.greeted && closedByPeer(err) {
			// The server hung up before the request was sent. What it
			// said first, if anything, tells why (a wrong announcement);
			// otherwise it hung up before it said anything.
			if gerr := c.greet(); gerr != nil && !errors.Is(gerr, io.ErrUnexpectedEOF) {
				return gerr
			}
			return fmt.Errorf("%w: %w (write request: %w)", ErrAnnouncement, io.ErrUnexpectedEOF, err)
		}
		return fmt.Errorf("scache: write request: %w", err)
	}
	return nil
}

// closedByPeer reports whether err says the peer closed the connection.
func closedByPeer(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// recv scans one reply record strictly and checks that all items arrived.
func (c *Client) recv(items ...attr.Item) error {
	c.deadline()
	if err := c.greet(); err != nil {
		return err
	}
	n, err := c.dec.Scan(attr.FlagStrict, items...)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("scache: read reply: %w", err)
	}
	if n != len(items) {
		return fmt.Errorf("%w: reply has %d of %d attributes", scache.ErrProtocol, n, len(items))
	}
	return nil
}

// Result is the outcome of a find request. FD, the descriptor found, is
// valid only with StatusOK: the caller owns it then and must close it;
// otherwise it is -1 and the properties are empty.
type Result struct {
	Status   scache.Status
	FD       int
	DestProp string // destination properties (find_dest only)
	EndpProp string // endpoint properties
}

// miss is the Result of a find that found nothing, or failed.
func miss(st scache.Status) Result { return Result{Status: st, FD: -1} }

// SaveEndp caches fd under the endpoint label with properties prop for at
// most ttl (save_endp; sent in whole seconds, rounded up), in the order
// of cache.Cache.SaveEndp. The server gets its own copy of fd; the caller
// keeps fd and closes it. A bad request gets StatusBad (the server then
// sends no dummy record and no descriptor is passed); StatusFail means the
// server did not receive the descriptor.
func (c *Client) SaveEndp(label, prop string, fd int, ttl time.Duration) (scache.Status, error) {
	if err := c.send(attr.List{
		attr.Str(scache.AttrReq, scache.ReqSaveEndp),
		attr.Int(scache.AttrTTL, wireSeconds(ttl)),
		attr.Str(scache.AttrLabel, label),
		attr.Str(scache.AttrProp, prop),
	}); err != nil {
		return 0, err
	}
	c.deadline()
	if err := c.greet(); err != nil {
		return 0, err
	}
	l, err := c.dec.Decode()
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return 0, fmt.Errorf("scache: read reply: %w", err)
	}
	if len(l) == 1 && l[0].Name == scache.AttrStatus {
		// The server rejected the request before the handshake.
		return parseStatus(l[0].Value)
	}
	if len(l) != 1 || l[0].Name != scache.AttrDummy {
		return 0, fmt.Errorf("%w: expected a dummy record, got %d attributes", scache.ErrProtocol, len(l))
	}
	c.deadline()
	if err := fdpass.Send(c.uc, fd); err != nil {
		return 0, fmt.Errorf("scache: send descriptor: %w", err)
	}
	return c.recvStatus()
}

// recvStatus reads a reply that is a status alone.
func (c *Client) recvStatus() (scache.Status, error) {
	var st int
	if err := c.recv(attr.WantInt(scache.AttrStatus, &st)); err != nil {
		return 0, err
	}
	return scache.Status(st), nil
}

func parseStatus(v string) (scache.Status, error) {
	u, err := attr.ParseUint32(v)
	if err != nil {
		return 0, fmt.Errorf("%w: status %q", scache.ErrProtocol, v)
	}
	return scache.Status(int32(u)), nil
}

// FindEndp asks for a session cached under the endpoint label
// (find_endp). On StatusOK the Result holds the descriptor and the
// endpoint properties.
func (c *Client) FindEndp(label string) (Result, error) {
	if err := c.send(attr.List{attr.Str(scache.AttrReq, scache.ReqFindEndp), attr.Str(scache.AttrLabel, label)}); err != nil {
		return miss(0), err
	}
	var st int
	var prop string
	if err := c.recv(attr.WantInt(scache.AttrStatus, &st), attr.WantStr(scache.AttrProp, &prop)); err != nil {
		return miss(0), err
	}
	if scache.Status(st) != scache.StatusOK {
		return miss(scache.Status(st)), nil
	}
	fd, err := c.receive()
	if err != nil {
		return miss(0), err
	}
	return Result{Status: scache.StatusOK, FD: fd, EndpProp: prop}, nil
}

// SaveDest binds the destination label, with properties destProp, to the
// endpoint label for at most ttl (save_dest; sent in whole seconds,
// rounded up), in the order of cache.Cache.SaveDest.
func (c *Client) SaveDest(destLabel, destProp, endpLabel string, ttl time.Duration) (scache.Status, error) {
	if err := c.send(attr.List{
		attr.Str(scache.AttrReq, scache.ReqSaveDest),
		attr.Int(scache.AttrTTL, wireSeconds(ttl)),
		attr.Str(scache.AttrLabel, destLabel),
		attr.Str(scache.AttrProp, destProp),
		attr.Str(scache.AttrLabel, endpLabel),
	}); err != nil {
		return 0, err
	}
	return c.recvStatus()
}

// FindDest asks for a session of any endpoint bound to the destination
// label (find_dest). On StatusOK the Result holds the descriptor, the
// destination properties and the endpoint properties.
func (c *Client) FindDest(label string) (Result, error) {
	if err := c.send(attr.List{attr.Str(scache.AttrReq, scache.ReqFindDest), attr.Str(scache.AttrLabel, label)}); err != nil {
		return miss(0), err
	}
	var st int
	var destProp, endpProp string
	if err := c.recv(attr.WantInt(scache.AttrStatus, &st), attr.WantStr(scache.AttrProp, &destProp), attr.WantStr(scache.AttrProp, &endpProp)); err != nil {
		return miss(0), err
	}
	if scache.Status(st) != scache.StatusOK {
		return miss(scache.Status(st)), nil
	}
	fd, err := c.receive()
	if err != nil {
		return miss(0), err
	}
	return Result{Status: scache.StatusOK, FD: fd, DestProp: destProp, EndpProp: endpProp}, nil
}

// dummy is the record that brackets a descriptor transfer.
var dummy = attr.List{attr.Str(scache.AttrDummy, "")}

// receive runs the client half of a find hit: dummy, descriptor, dummy.
// As in scache_clnt, a failure to send the trailing dummy is ignored.
func (c *Client) receive() (int, error) {
	if err := c.send(dummy); err != nil {
		return -1, err
	}
	if n := c.br.Buffered(); n != 0 {
		return -1, fmt.Errorf("%w (%d bytes)", scache.ErrBuffered, n)
	}
	c.deadline()
	fd, err := fdpass.Recv(c.uc)
	if err != nil {
		return -1, fmt.Errorf("scache: receive descriptor: %w", err)
	}
	_ = c.send(dummy)
	return fd, nil
}

// Request sends one raw request record and returns the reply record,
// for requests that pass no descriptor (such as the debug extensions).
func (c *Client) Request(req attr.List) (attr.List, error) {
	if err := c.send(req); err != nil {
		return nil, err
	}
	c.deadline()
	if err := c.greet(); err != nil {
		return nil, err
	}
	l, err := c.dec.Decode()
	if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("scache: read reply: %w", err)
	}
	return l, nil
}

// wireSeconds is ttl in the protocol's unit, whole seconds: a partial
// second counts as one, and values beyond the wire's int are clamped.
func wireSeconds(ttl time.Duration) int {
	secs := ttl / time.Second
	if ttl%time.Second > 0 {
		secs++
	}
	return int(max(min(secs, math.MaxInt32), math.MinInt32))
}
