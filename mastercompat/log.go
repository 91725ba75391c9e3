package mastercompat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// LevelFatal is the slog level of Postfix's msg_fatal lines: they get the
// "fatal: " prefix and syslog priority LOG_CRIT.
const LevelFatal = slog.Level(12)

// MaxText is the longest message text Postfix logs (MSG_SYSLOG_RECLEN,
// MSG_LOGGER_RECLEN); longer texts are cut.
const MaxText = 2000

// Sink receives finished log lines: text is the message with its severity
// prefix ("warning: ..."), but without time stamp, tag or pid.
type Sink interface {
	WriteLog(t time.Time, level slog.Level, text string) error
}

// Handler is a slog.Handler that writes Postfix log lines. The record's
// message is the Postfix text; Warn, Error and LevelFatal records get the
// prefixes "warning: ", "error: " and "fatal: ". Attributes are appended as
// " key=value" only while the level is Debug or lower (Postfix's -v), so
// normal logs carry exactly Postfix's text. The whole text, attributes
// included, then goes through [Printable] as Postfix's msg_vprintf does,
// so that client-supplied bytes (labels, properties, request names) can
// neither forge a line nor put control characters into the log. Safe for
// concurrent use if the Sink is.
type Handler struct {
	sink   Sink
	level  slog.Leveler
	attrs  string // preformatted " key=value" pairs from WithAttrs
	prefix string // group prefix "g1.g2."
	utf8   bool   // Printable keeps UTF-8 (smtputf8_enable)
}

// NewHandler returns a Handler writing to s. level may be a *slog.LevelVar
// that -v or MAIL_VERBOSE lowers to slog.LevelDebug; nil means Info.
func NewHandler(s Sink, level slog.Leveler) *Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{sink: s, level: level}
}

// NewStderrHandler returns a Handler that writes "TAG[PID]: text" lines to
// w, for running outside master (standalone mode). tag is normally
// "postfix/scache".
func NewStderrHandler(w io.Writer, tag string, pid int, level slog.Leveler) *Handler {
	return NewHandler(&WriterSink{W: w, Tag: tag, PID: pid}, level)
}

// WithUTF8 returns a handler that keeps UTF-8 sequences in log text, as
// Postfix does when smtputf8_enable is yes (util_utf8_enable); by default
// every byte outside printable ASCII is logged as '?'.
func (h *Handler) WithUTF8(enable bool) *Handler {
	h2 := *h
	h2.utf8 = enable
	return &h2
}

// Enabled reports whether level is at or above the handler's level.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// Handle formats r as a Postfix line and writes it to the sink.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	if h.level.Level() <= slog.LevelDebug {
		b.WriteString(h.attrs)
		r.Attrs(func(a slog.Attr) bool {
			appendAttr(&b, h.prefix, a)
			return true
		})
	}
	text := Printable(b.String(), h.utf8)
	if len(text) > MaxText {
		text = text[:MaxText]
	}
	return h.sink.WriteLog(r.Time, r.Level, SeverityPrefix(r.Level)+text)
}

// WithAttrs returns a handler that adds attrs (shown at debug level only).
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.prefix, a)
	}
	h2 := *h
	h2.attrs = b.String()
	return &h2
}

// WithGroup returns a handler that qualifies later attribute keys.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	v := a.Value.String()
	if needsQuote(v) {
		v = strconv.Quote(v)
	}
	b.WriteString(" " + prefix + a.Key + "=" + v)
}

// needsQuote reports whether an attribute value must be quoted to stay one
// token: it is empty or holds a space, a quote, '=', a control character,
// DEL or invalid UTF-8. Quoting shows a newline as \n rather than as the
// '?' that Printable would make of it.
func needsQuote(v string) bool {
	if v == "" {
		return true
	}
	for i := 0; i < len(v); i++ {
		if ch := v[i]; ch <= ' ' || ch == '"' || ch == '=' || ch == 0x7f {
			return true
		}
	}
	return !utf8.ValidString(v)
}

// SeverityPrefix returns Postfix's text prefix for level: "" for info and
// debug, "warning: ", "error: " or "fatal: ".
func SeverityPrefix(level slog.Level) string {
	switch {
	case level >= LevelFatal:
		return "fatal: "
	case level >= slog.LevelError:
		return "error: "
	case level >= slog.LevelWarn:
		return "warning: "
	}
	return ""
}

// Syslog severities (syslog.h).
const (
	sevCrit    = 2
	sevErr     = 3
	sevWarning = 4
	sevInfo    = 6
)

func syslogSeverity(level slog.Level) int {
	switch {
	case level >= LevelFatal:
		return sevCrit
	case level >= slog.LevelError:
		return sevErr
	case level >= slog.LevelWarn:
		return sevWarning
	}
	return sevInfo
}

// WriterSink writes "TAG[PID]: text" lines (or "TAG: text" when PID is 0,
// the form of Postfix's -V output on stderr) to W. Safe for concurrent use.
type WriterSink struct {
	W   io.Writer
	Tag string
	PID int

	mu sync.Mutex
}

// WriteLog writes one line.
func (s *WriterSink) WriteLog(_ time.Time, _ slog.Level, text string) error {
	var line string
	if s.PID != 0 {
		line = s.Tag + "[" + strconv.Itoa(s.PID) + "]: " + text + "\n"
	} else {
		line = s.Tag + ": " + text + "\n"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := io.WriteString(s.W, line)
	return err
}

// MultiSink writes every line to each of sinks and joins their errors.
func MultiSink(sinks ...Sink) Sink { return multiSink(sinks) }

type multiSink []Sink

func (m multiSink) WriteLog(t time.Time, level slog.Level, text string) error {
	var errs []error
	for _, s := range m {
		if err := s.WriteLog(t, level, text); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syslogFacilities maps syslog_facility names to facility codes (LOG_MAIL
// is 2<<3), as util/msg_syslog.c's table does on Linux.
func syslogFacility(name string) (int, bool) {
	names := [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp"}
	for i, n := range names {
		if n == name {
			return i << 3, true
		}
	}
	if len(name) == 6 && strings.HasPrefix(name, "local") && name[5] >= '0' && name[5] <= '7' {
		return (16 + int(name[5]-'0')) << 3, true
	}
	return 0, false
}

// DefaultSyslogPath is where glibc's syslog(3) sends messages.
const DefaultSyslogPath = "/dev/log"

// Syslog is a Sink that talks to the local syslog daemon as glibc's
// syslog(3) does after openlog(tag, LOG_PID|LOG_NDELAY, facility): one
// "<PRI>Mmm dd hh:mm:ss TAG[PID]: text" message per line, to a datagram
// socket (or a stream socket, with a NUL after each message, when the
// server only offers that). The connection is made at once, so it
// survives chroot; when a send fails it redials once. Safe for concurrent
// use.
type Syslog struct {
	path     string
	tag      string
	pid      int
	facility int

	mu     sync.Mutex
	conn   net.Conn
	stream bool // conn is a stream socket
}

// DialSyslog connects to the syslog socket at path ("" means /dev/log).
// facility is a syslog_facility name such as "mail"; an unknown name is an
// error. A socket that cannot be reached is not an error: messages are then
// dropped until a redial succeeds, as with syslog(3).
func DialSyslog(path, tag string, pid int, facility string) (*Syslog, error) {
	fac, ok := syslogFacility(facility)
	if !ok {
		return nil, fmt.Errorf("mastercompat: unknown syslog facility %q", facility)
	}
	if path == "" {
		path = DefaultSyslogPath
	}
	s := &Syslog{path: path, tag: tag, pid: pid, facility: fac}
	_ = s.dial()
	return s, nil
}

func (s *Syslog) dial() error {
	c, err := net.Dial("unixgram", s.path)
	stream := false
	if errors.Is(err, syscall.EPROTOTYPE) {
		c, err = net.Dial("unix", s.path)
		stream = true
	}
	if err != nil {
		return err
	}
	s.conn, s.stream = c, stream
	return nil
}

// WriteLog sends one message.
func (s *Syslog) WriteLog(t time.Time, level slog.Level, text string) error {
	msg := fmt.Sprintf("<%d>%s %s[%d]: %s", s.facility|syslogSeverity(level), t.Format(time.Stamp), s.tag, s.pid, text)
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if s.conn == nil {
			if err := s.dial(); err != nil {
				return fmt.Errorf("mastercompat: syslog: %w", err)
			}
		}
		b := []byte(msg)
		if s.stream {
			b = append(b, 0) // stream sockets: glibc sends the terminating NUL
		}
		_, err := s.conn.Write(b)
		if err == nil || attempt > 0 {
			if err != nil {
				return fmt.Errorf("mastercompat: syslog: %w", err)
			}
			return nil
		}
		s.conn.Close()
		s.conn = nil
	}
}

// Close closes the syslog connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// Postlog is a Sink that sends datagrams to postlogd(8) as
// util/msg_logger.c does: "Mmm DD hh:mm:ss HOST TAG[PID]: text", with a
// zero-padded day and the first label of myhostname. The socket is
// connected at once (before chroot). Safe for concurrent use.
type Postlog struct {
	host string
	tag  string
	pid  int

	mu   sync.Mutex
	conn net.Conn
}

// DialPostlog connects to the postlog socket at path
// ($queue_directory/public/$postlog_service_name). As in Postfix, a daemon
// has no fallback: if the socket cannot be reached the error is returned
// and the caller may still use the Postlog, which then drops messages.
func DialPostlog(path, tag, hostname string, pid int) (*Postlog, error) {
	if i := strings.IndexByte(hostname, '.'); i >= 0 {
		hostname = hostname[:i]
	}
	p := &Postlog{host: hostname, tag: tag, pid: pid}
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return p, fmt.Errorf("mastercompat: postlog: %w", err)
	}
	p.conn = c
	return p, nil
}

// WriteLog sends one record.
func (p *Postlog) WriteLog(t time.Time, _ slog.Level, text string) error {
	msg := t.Format("Jan 02 15:04:05 ") + p.host + " " + p.tag + "[" + strconv.Itoa(p.pid) + "]: " + text
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return nil
	}
	if _, err := io.WriteString(p.conn, msg); err != nil {
		return fmt.Errorf("mastercompat: postlog: %w", err)
	}
	return nil
}

// Close closes the postlog connection.
func (p *Postlog) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn = nil
	return err
}

// LogOptions say where a master child logs.
type LogOptions struct {
	Params     Params // syslog_facility, maillog_file(_prefixes), postlog_service_name, queue_directory, myhostname
	ConfigDir  string // for fatal texts
	Tag        string // "<syslog_name>/<name>", e.g. "postfix/scache"
	PID        int
	SyslogPath string    // "" means /dev/log
	Stderr     io.Writer // non-nil (-V): also write "TAG: text" lines here
}

// OpenLog opens the log sink Postfix's maillog_client_init would choose:
// postlog datagrams to $queue_directory/public/$postlog_service_name when
// maillog_file is set (which must start with one of maillog_file_prefixes),
// else syslog with syslog_facility. Call it before chroot. Configuration
// errors are [*FatalError]s; an unreachable log socket is not an error
// (the lines are dropped, as Postfix drops them).
func OpenLog(o LogOptions) (Sink, io.Closer, error) {
	var (
		sink   Sink
		closer io.Closer
	)
	p := o.Params
	if p.MaillogFile != "" {
		ok := false
		for _, pfx := range strings.FieldsFunc(p.MaillogFilePrefixes, func(r rune) bool { return r == ',' || strings.ContainsRune(spaceChars, r) }) {
			if strings.HasPrefix(p.MaillogFile, pfx) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, nil, fatalf("maillog_file value '%s' does not match any prefix in maillog_file_prefixes", p.MaillogFile)
		}
		pl, _ := DialPostlog(p.QueueDirectory+"/public/"+p.PostlogServiceName, o.Tag, p.MyHostname, o.PID)
		sink, closer = pl, pl
	} else {
		sl, err := DialSyslog(o.SyslogPath, o.Tag, o.PID, p.SyslogFacility)
		if err != nil {
			return nil, nil, fatalf("file %s/main.cf: parameter syslog_facility: unrecognized value: %s", o.ConfigDir, p.SyslogFacility)
		}
		sink, closer = sl, sl
	}
	if o.Stderr != nil {
		sink = MultiSink(sink, &WriterSink{W: o.Stderr, Tag: o.Tag})
	}
	return sink, closer, nil
}
