package scache

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
)

// DefaultClientTimeout bounds every read and write of a Client
// (connection_cache_protocol_timeout).
const DefaultClientTimeout = 5 * time.Second

// Client talks to an scache(8) server the way Postfix's scache_clnt does:
// every request and reply is checked strictly, and descriptors travel with
// the Linux handshakes (dummy records around every descriptor). Unlike
// scache_clnt it never reconnects or retries: errors are returned. A
// Client is not safe for concurrent use.
//
// Every method returns an error only for a communication or protocol
// failure; a reply with status StatusBad or StatusFail is a normal outcome
// with a nil error.
type Client struct {
	// Timeout bounds every read and write, and the wait for a
	// descriptor. Zero means DefaultClientTimeout.
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
// server's protocol announcement: see [NewClient].
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(nc.(*net.UnixConn))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// NewClient returns a client on a connection that has just been
// established. The Client owns uc and closes it in Close.
//
// It does not wait for the server to speak first: Postfix 3.6 and later
// (and goscache by default) announce protocol=connection_cache_protocol on
// accept, Postfix 3.5 sends nothing until it has a request to answer. The
// announcement, when there is one, is read and checked just before the
// first reply, where it is told apart from a reply by its first byte
// (a reply starts with "status" or "dummy"); [Client.Announced] then says
// which kind of server it was. A wrong protocol name fails the first
// request with an error wrapping [attr.ErrUnexpectedValue], and a server
// that closes the connection before sending anything (goscache does that to
// users it does not admit) fails it with one wrapping [io.ErrUnexpectedEOF];
// both errors say "read announcement".
func NewClient(uc *net.UnixConn) (*Client, error) {
	c := &Client{uc: uc}
	c.br = bufio.NewReader(uc)
	c.bw = bufio.NewWriter(uc)
	c.dec = attr.NewDecoder(c.br, attr.Format0, attr.Limits{})
	c.dec.Stream = "private/scache"
	c.enc = attr.NewEncoder(c.bw, attr.Format0)
	return c, nil
}

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
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		} else if closedByPeer(err) {
			err = fmt.Errorf("%w (%w)", io.ErrUnexpectedEOF, err)
		}
		return fmt.Errorf("%w: %w", ErrAnnouncement, err)
	}
	c.greeted = true
	if b[0] != AttrProtocol[0] {
		return nil // Postfix 3.5: the reply comes first
	}
	if _, err := c.dec.Scan(attr.FlagStrict, attr.WantStrEq(AttrProtocol, ProtocolName)); err != nil {
		if err == io.EOF {
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
	return DefaultClientTimeout
}

func (c *Client) deadline() {
	c.uc.SetDeadline(time.Now().Add(c.timeout()))
}

// Close closes the connection.
func (c *Client) Close() error { return c.uc.Close() }

func (c *Client) send(l attr.List) error {
	c.deadline()
	if err := c.enc.Encode(l); err != nil {
		if !c.greeted && closedByPeer(err) {
			// The server hung up before it said anything.
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
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("scache: read reply: %w", err)
	}
	if n != len(items) {
		return fmt.Errorf("%w: reply has %d of %d attributes", ErrProtocol, n, len(items))
	}
	return nil
}

// SaveEndp caches fd under the endpoint label with properties prop for at
// most ttl (save_endp; sent in whole seconds, rounded up). The server gets its own copy of fd; the
// caller keeps fd and closes it. A bad request gets StatusBad (the server
// then sends no dummy record and no descriptor is passed); StatusFail means
// the server did not receive the descriptor.
func (c *Client) SaveEndp(ttl time.Duration, label, prop string, fd int) (status int, err error) {
	if err := c.send(attr.List{
		attr.Str(AttrReq, ReqSaveEndp),
		attr.Int(AttrTTL, wireSeconds(ttl)),
		attr.Str(AttrLabel, label),
		attr.Str(AttrProp, prop),
	}); err != nil {
		return 0, err
	}
	c.deadline()
	if err := c.greet(); err != nil {
		return 0, err
	}
	l, err := c.dec.Decode()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return 0, fmt.Errorf("scache: read reply: %w", err)
	}
	if len(l) == 1 && l[0].Name == AttrStatus {
		// The server rejected the request before the handshake.
		return parseStatus(l[0].Value)
	}
	if len(l) != 1 || l[0].Name != AttrDummy {
		return 0, fmt.Errorf("%w: expected a dummy record, got %d attributes", ErrProtocol, len(l))
	}
	c.deadline()
	if err := sendFD(c.uc, fd); err != nil {
		return 0, fmt.Errorf("scache: send descriptor: %w", err)
	}
	if err := c.recv(attr.WantInt(AttrStatus, &status)); err != nil {
		return 0, err
	}
	return status, nil
}

func parseStatus(v string) (int, error) {
	u, err := attr.ParseUint32(v)
	if err != nil {
		return 0, fmt.Errorf("%w: status %q", ErrProtocol, v)
	}
	return int(int32(u)), nil
}

// FindEndp asks for a session cached under the endpoint label
// (find_endp). On StatusOK it returns the descriptor, which the caller owns
// and must close, and the endpoint properties; otherwise fd is -1.
func (c *Client) FindEndp(label string) (fd int, prop string, status int, err error) {
	if err := c.send(attr.List{attr.Str(AttrReq, ReqFindEndp), attr.Str(AttrLabel, label)}); err != nil {
		return -1, "", 0, err
	}
	if err := c.recv(attr.WantInt(AttrStatus, &status), attr.WantStr(AttrProp, &prop)); err != nil {
		return -1, "", 0, err
	}
	if status != StatusOK {
		return -1, "", status, nil
	}
	fd, err = c.receive()
	if err != nil {
		return -1, "", 0, err
	}
	return fd, prop, status, nil
}

// SaveDest binds the destination label, with properties destProp, to the
// endpoint label for at most ttl (save_dest; sent in whole seconds,
// rounded up).
func (c *Client) SaveDest(ttl time.Duration, destLabel, destProp, endpLabel string) (status int, err error) {
	if err := c.send(attr.List{
		attr.Str(AttrReq, ReqSaveDest),
		attr.Int(AttrTTL, wireSeconds(ttl)),
		attr.Str(AttrLabel, destLabel),
		attr.Str(AttrProp, destProp),
		attr.Str(AttrLabel, endpLabel),
	}); err != nil {
		return 0, err
	}
	if err := c.recv(attr.WantInt(AttrStatus, &status)); err != nil {
		return 0, err
	}
	return status, nil
}

// FindDest asks for a session of any endpoint bound to the destination
// label (find_dest). On StatusOK it returns the descriptor, which the
// caller owns and must close, the destination properties and the endpoint
// properties; otherwise fd is -1.
func (c *Client) FindDest(label string) (fd int, destProp, endpProp string, status int, err error) {
	if err := c.send(attr.List{attr.Str(AttrReq, ReqFindDest), attr.Str(AttrLabel, label)}); err != nil {
		return -1, "", "", 0, err
	}
	if err := c.recv(attr.WantInt(AttrStatus, &status), attr.WantStr(AttrProp, &destProp), attr.WantStr(AttrProp, &endpProp)); err != nil {
		return -1, "", "", 0, err
	}
	if status != StatusOK {
		return -1, "", "", status, nil
	}
	fd, err = c.receive()
	if err != nil {
		return -1, "", "", 0, err
	}
	return fd, destProp, endpProp, status, nil
}

// receive runs the client half of a find hit: dummy, descriptor, dummy.
// As in scache_clnt, a failure to send the trailing dummy is ignored.
func (c *Client) receive() (int, error) {
	if err := c.send(replyDummy); err != nil {
		return -1, err
	}
	if n := c.br.Buffered(); n != 0 {
		return -1, fmt.Errorf("%w (%d bytes)", ErrBuffered, n)
	}
	c.deadline()
	fd, err := recvFD(c.uc)
	if err != nil {
		return -1, fmt.Errorf("scache: receive descriptor: %w", err)
	}
	_ = c.send(replyDummy)
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
