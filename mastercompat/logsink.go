package mastercompat

import (
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
)

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

// writerSink writes "TAG[PID]: text" lines (or "TAG: text" when PID is 0,
// the form of Postfix's -V output on stderr) to W. Safe for concurrent use.
type writerSink struct {
	W   io.Writer
	Tag string
	PID int

	mu sync.Mutex
}

// WriteLog writes one line.
func (s *writerSink) WriteLog(_ time.Time, _ slog.Level, text string) error {
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

// newMultiSink writes every line to each of sinks and joins their errors.
func newMultiSink(sinks ...logSink) logSink { return multiSink(sinks) }

type multiSink []logSink

func (m multiSink) WriteLog(t time.Time, level slog.Level, text string) error {
	var errs []error
	for _, s := range m {
		if err := s.WriteLog(t, level, text); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrors(errs...)
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

// defaultSyslogPath is where glibc's syslog(3) sends messages.
const defaultSyslogPath = "/dev/log"

// syslogSink is a logSink that talks to the local syslog daemon as glibc's
// syslog(3) does after openlog(tag, LOG_PID|LOG_NDELAY, facility): one
// "<PRI>Mmm dd hh:mm:ss TAG[PID]: text" message per line, to a datagram
// socket (or a stream socket, with a NUL after each message, when the
// server only offers that). The connection is made at once, so it
// survives chroot; when a send fails it redials once. Safe for concurrent
// use.
type syslogSink struct {
	path     string
	tag      string
	pid      int
	facility int

	mu     sync.Mutex
	conn   net.Conn
	stream bool // conn is a stream socket
}

// dialSyslog connects to the syslog socket at path ("" means /dev/log).
// facility is a syslog_facility name such as "mail"; an unknown name is an
// error. A socket that cannot be reached is not an error: messages are then
// dropped until a redial succeeds, as with syslog(3).
func dialSyslog(path, tag string, pid int, facility string) (*syslogSink, error) {
	fac, ok := syslogFacility(facility)
	if !ok {
		return nil, fmt.Errorf("mastercompat: unknown syslog facility %q", facility)
	}
	if path == "" {
		path = defaultSyslogPath
	}
	s := &syslogSink{path: path, tag: tag, pid: pid, facility: fac}
	_ = s.dial()
	return s, nil
}

func (s *syslogSink) dial() error {
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
func (s *syslogSink) WriteLog(t time.Time, level slog.Level, text string) error {
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
func (s *syslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// postlogSink is a logSink that sends datagrams to postlogd(8) as
// util/msg_logger.c does: "Mmm DD hh:mm:ss HOST TAG[PID]: text", with a
// zero-padded day and the first label of myhostname. The socket is
// connected at once (before chroot). Safe for concurrent use.
type postlogSink struct {
	host string
	tag  string
	pid  int

	mu   sync.Mutex
	conn net.Conn
}

// dialPostlog connects to the postlog socket at path
// ($queue_directory/public/$postlog_service_name). As in Postfix, a daemon
// has no fallback: if the socket cannot be reached the error is returned
// and the caller may still use the postlogSink, which then drops messages.
func dialPostlog(path, tag, hostname string, pid int) (*postlogSink, error) {
	if i := strings.IndexByte(hostname, '.'); i >= 0 {
		hostname = hostname[:i]
	}
	p := &postlogSink{host: hostname, tag: tag, pid: pid}
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return p, fmt.Errorf("mastercompat: postlog: %w", err)
	}
	p.conn = c
	return p, nil
}

// WriteLog sends one record.
func (p *postlogSink) WriteLog(t time.Time, _ slog.Level, text string) error {
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
func (p *postlogSink) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn = nil
	return err
}
