// Package sink is the SMTP sink of the compatibility suite: a set of SMTP
// servers (github.com/emersion/go-smtp), one per 127.0.0.x or [::1] address,
// and LMTP servers on UNIX-domain sockets, that stand for the mail exchangers
// smtp(8) and lmtp(8) deliver to. Each address counts TCP
// connections, SMTP sessions, messages and RSET commands (smtp(8)'s probe
// before it reuses a cached connection), and can refuse or delay connections
// and close idle ones. With a TLS configuration the servers offer STARTTLS.
//
// Everything stays on the loopback network or on local sockets.
package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/hashicorp/go-multierror"
)

// Behavior says how one address treats its connections. The zero value
// accepts everything at once and never closes an idle connection.
type Behavior struct {
	// RefuseEvery, when n > 0, answers every n-th connection (the 1st,
	// n+1-th, ...) with a 421 greeting and closes it, as a busy server does.
	RefuseEvery int
	// RefuseAll answers every connection with a 421 greeting.
	RefuseAll bool
	// Delay waits this long before the greeting.
	Delay time.Duration
	// ReplyDelay waits this long before every reply after the greeting,
	// as a slow or overloaded server answers.
	ReplyDelay time.Duration
	// IdleClose closes a connection on which nothing arrived for this long
	// (go-smtp replies 421, then closes).
	IdleClose time.Duration
}

// Counts are the figures of one address, or of several added together.
type Counts struct {
	Conns    int // TCP connections accepted
	Refused  int // connections answered with 421 by RefuseEvery/RefuseAll
	Sessions int // connections that reached EHLO/HELO
	TLS      int // sessions that completed STARTTLS
	Messages int // messages accepted (end of DATA)
	Rsets    int // RSET commands (smtp(8)'s reuse probe)
}

// add returns the sum of c and o.
func (c Counts) add(o Counts) Counts {
	return Counts{
		Conns: c.Conns + o.Conns, Refused: c.Refused + o.Refused,
		Sessions: c.Sessions + o.Sessions, TLS: c.TLS + o.TLS,
		Messages: c.Messages + o.Messages, Rsets: c.Rsets + o.Rsets,
	}
}

// Message is one accepted message.
type Message struct {
	Addr      string    // listener address that received it, "127.0.0.10:2525"
	From      string    // envelope sender
	To        []string  // envelope recipients
	MessageID string    // Message-ID header
	Subject   string    // Subject header
	TLS       bool      // received over STARTTLS
	ConnID    int       // sink connection number (unique per Sink)
	At        time.Time // when the end of DATA arrived
}

// Config configures a Sink.
type Config struct {
	// Addrs are the addresses to listen on: host:port on a loopback address
	// (127.0.0.0/8 or [::1]) for SMTP, or "unix:/absolute/path" for LMTP
	// over a UNIX-domain socket (as Dovecot's LMTP listens).
	Addrs []string
	// TLS, when non-nil, makes every address offer STARTTLS.
	TLS *tls.Config
	// Logger receives go-smtp's errors; nil discards them.
	Logger *slog.Logger
}

// Sink is a running set of SMTP servers. Safe for concurrent use.
type Sink struct {
	logger    *slog.Logger
	tls       *tls.Config
	servers   []*smtp.Server
	listeners []*listener
	addrs     []string

	mu       sync.Mutex
	counts   map[string]*Counts
	behavior map[string]Behavior
	msgs     []Message
	nextConn int
}

// Start listens on every address of cfg and serves until Close.
func Start(cfg Config) (*Sink, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		logger:   logger,
		tls:      cfg.TLS,
		counts:   make(map[string]*Counts),
		behavior: make(map[string]Behavior),
	}
	for _, addr := range cfg.Addrs {
		network, laddr, lmtp, err := listenAddr(addr)
		if err != nil {
			s.Close()
			return nil, err
		}
		l, err := net.Listen(network, laddr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sink: %w", err)
		}
		if lmtp {
			// lmtp(8) runs as mail_owner: it needs write permission.
			if err := os.Chmod(laddr, 0o666); err != nil {
				l.Close()
				s.Close()
				return nil, fmt.Errorf("sink: %w", err)
			}
		}
		if !lmtp {
			addr = l.Addr().String()
		}
		s.counts[addr] = &Counts{}
		s.addrs = append(s.addrs, addr)
		srv := smtp.NewServer(&backend{s: s, addr: addr})
		srv.LMTP = lmtp
		srv.Domain = "sink"
		if lmtp {
			srv.Domain = "sink-lmtp"
		}
		srv.TLSConfig = cfg.TLS
		srv.ErrorLog = slogLogger{logger}
		srv.MaxRecipients = 1000
		s.servers = append(s.servers, srv)
		s.listeners = append(s.listeners, &listener{Listener: l, s: s, addr: addr})
	}
	for i, srv := range s.servers {
		go func() { _ = srv.Serve(s.listeners[i]) }() // returns when Close closes the listener
	}
	return s, nil
}

// listenAddr returns how to listen on addr: "unix:/path" is an LMTP server
// on a UNIX-domain socket; host:port an SMTP server on a loopback address,
// IPv4 or IPv6 ("[::1]:2525").
func listenAddr(addr string) (network, laddr string, lmtp bool, err error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if !filepath.IsAbs(path) {
			return "", "", false, fmt.Errorf("sink: %s: the socket path must be absolute", addr)
		}
		return "unix", path, true, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", false, fmt.Errorf("sink: %w", err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", "", false, fmt.Errorf("sink: %s is not a loopback address", addr)
	}
	if ip.To4() == nil {
		return "tcp6", addr, false, nil
	}
	return "tcp4", addr, false, nil
}

// Addrs returns the addresses listened on, in Config order.
func (s *Sink) Addrs() []string { return append([]string(nil), s.addrs...) }

// SetBehavior changes how addr treats new connections.
func (s *Sink) SetBehavior(addr string, b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behavior[addr] = b
}

// Reset forgets every count and message and restores default behaviour.
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a := range s.counts {
		s.counts[a] = &Counts{}
	}
	s.behavior = make(map[string]Behavior)
	s.msgs = nil
}

// Counts returns the figures of addr.
func (s *Sink) Counts(addr string) Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.counts[addr]; ok {
		return *c
	}
	return Counts{}
}

// Total returns the figures of every address added together.
func (s *Sink) Total() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t Counts
	for _, c := range s.counts {
		t = t.add(*c)
	}
	return t
}

// Messages returns a copy of every message accepted so far, in order.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Close stops every server and closes every connection.
func (s *Sink) Close() error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, smtp.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return joinErrors(errs)
}

// Shutdown stops accepting and waits until every open connection has
// ended, or ctx is done.
func (s *Sink) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return joinErrors(errs)
}

func (s *Sink) count(addr string, f func(c *Counts)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.counts[addr])
}

// listener counts accepted connections and applies refusal and delay.
type listener struct {
	net.Listener
	s    *Sink
	addr string
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.s.mu.Lock()
		cnt := l.s.counts[l.addr]
		cnt.Conns++
		b := l.s.behavior[l.addr]
		refuse := b.RefuseAll || (b.RefuseEvery > 0 && (cnt.Conns-1)%b.RefuseEvery == 0)
		if refuse {
			cnt.Refused++
		}
		l.s.nextConn++
		id := l.s.nextConn
		l.s.mu.Unlock()
		if refuse {
			go func() {
				_, _ = io.WriteString(c, "421 4.3.2 sink refuses this connection\r\n") // the client may be gone already
				c.Close()
			}()
			continue
		}
		return &conn{Conn: c, id: id, delay: b.Delay, replyDelay: b.ReplyDelay, idle: b.IdleClose}, nil
	}
}

// conn carries the sink's connection number, delays the greeting (the first
// write) and every later reply without holding up the accept loop, and arms
// the idle deadline before every read (go-smtp then replies 421 and closes).
type conn struct {
	net.Conn
	id         int
	delay      time.Duration
	replyDelay time.Duration
	idle       time.Duration
	greeted    bool
}

func (c *conn) Read(p []byte) (int, error) {
	if c.idle > 0 {
		_ = c.SetReadDeadline(time.Now().Add(c.idle)) // fails only on a closed conn, which Read reports
	}
	return c.Conn.Read(p)
}

func (c *conn) Write(p []byte) (int, error) {
	if !c.greeted {
		c.greeted = true
		if c.delay > 0 {
			time.Sleep(c.delay)
		}
	} else if c.replyDelay > 0 {
		time.Sleep(c.replyDelay)
	}
	return c.Conn.Write(p)
}

type backend struct {
	s    *Sink
	addr string
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	b.s.count(b.addr, func(cn *Counts) {
		if isTLS {
			cn.TLS++
		} else {
			cn.Sessions++
		}
	})
	id := 0
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if sc, ok := nc.(*conn); ok {
		id = sc.id
	}
	return &session{b: b, tls: isTLS, connID: id}, nil
}

// session records one message at a time. go-smtp calls Reset after every
// DATA as well as for RSET; afterData tells the two apart. (After BDAT the
// count would be off; smtp(8) never sends BDAT.)
type session struct {
	b         *backend
	tls       bool
	connID    int
	from      string
	to        []string
	afterData bool
}

func (s *session) Reset() {
	if s.afterData {
		s.afterData = false
	} else {
		s.b.s.count(s.b.addr, func(c *Counts) { c.Rsets++ })
	}
	s.from, s.to = "", nil
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	// A message counts once its end of DATA has arrived: a client that
	// dies in the middle of the data (postfix stop) delivered nothing. A
	// read that fails (the idle close fired between two reads of a slow
	// client) is a temporary failure, as a server that times out says:
	// 421, never a 5xx that would bounce the message.
	data, err := io.ReadAll(r)
	if err != nil {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "sink: the data did not arrive: " + err.Error()}
	}
	m := Message{Addr: s.b.addr, From: s.from, To: s.to, TLS: s.tls, ConnID: s.connID, At: time.Now()}
	if msg, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.MessageID = strings.TrimSpace(msg.Header.Get("Message-Id"))
		m.Subject = msg.Header.Get("Subject")
	}
	s.afterData = true
	s.b.s.mu.Lock()
	s.b.s.counts[s.b.addr].Messages++
	s.b.s.msgs = append(s.b.s.msgs, m)
	s.b.s.mu.Unlock()
	return nil
}

type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.l.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Println(v ...any)               { l.l.Warn(fmt.Sprint(v...)) }

// Duplicates returns the messages (Message-ID and recipients) accepted more
// than once, sorted.
func Duplicates(msgs []Message) []string {
	seen := make(map[string]int)
	for _, m := range msgs {
		seen[m.MessageID+" "+strings.Join(m.To, ",")]++
	}
	var d []string
	for id, n := range seen {
		if n > 1 {
			d = append(d, id)
		}
	}
	sort.Strings(d)
	return d
}

// joinErrors collects errs into one error, nil when there are none, with
// the texts on one line as goscache's packages join theirs (go-multierror,
// "first; second").
func joinErrors(errs []error) error {
	return multierror.Append(&multierror.Error{ErrorFormat: func(es []error) string {
		texts := make([]string, len(es))
		for i, err := range es {
			texts[i] = err.Error()
		}
		return strings.Join(texts, "; ")
	}}, errs...).ErrorOrNil()
}
