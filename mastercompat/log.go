package mastercompat

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// LevelFatal is the slog level of Postfix's msg_fatal lines: they get the
// "fatal: " prefix and syslog priority LOG_CRIT.
const LevelFatal = slog.Level(12)

// maxText is the longest message text Postfix logs (MSG_SYSLOG_RECLEN,
// MSG_LOGGER_RECLEN); longer texts are cut.
const maxText = 2000

// logSink receives finished log lines: text is the message with its severity
// prefix ("warning: ..."), but without time stamp, tag or pid.
type logSink interface {
	WriteLog(t time.Time, level slog.Level, text string) error
}

// handler is a slog.Handler that writes Postfix log lines. The record's
// message is the Postfix text; Warn, Error and LevelFatal records get the
// prefixes "warning: ", "error: " and "fatal: ". Attributes are appended as
// " key=value" only while the level is Debug or lower (Postfix's -v), so
// normal logs carry exactly Postfix's text. The whole text, attributes
// included, then goes through printable as Postfix's msg_vprintf does,
// so that client-supplied bytes (labels, properties, request names) can
// neither forge a line nor put control characters into the log. Safe for
// concurrent use if the logSink is.
type handler struct {
	sink   logSink
	level  slog.Leveler
	attrs  string // preformatted " key=value" pairs from WithAttrs
	prefix string // group prefix "g1.g2."
	utf8   bool   // printable keeps UTF-8 (smtputf8_enable)
}

// newHandler returns a handler writing to s. level may be a *slog.LevelVar
// that -v or MAIL_VERBOSE lowers to slog.LevelDebug; nil means Info.
func newHandler(s logSink, level slog.Leveler) *handler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &handler{sink: s, level: level}
}

// NewStderrHandler returns a slog.Handler that writes Postfix's log lines,
// as "TAG[PID]: text", to w, for running outside master (standalone mode):
// severity prefixes, attributes only at debug level, and unprintable bytes
// masked as a master child logs them. tag is normally "postfix/scache".
// level may be a *slog.LevelVar; nil means Info.
func NewStderrHandler(w io.Writer, tag string, pid int, level slog.Leveler) slog.Handler {
	return newHandler(&writerSink{W: w, Tag: tag, PID: pid}, level)
}

// withUTF8 returns a handler that keeps UTF-8 sequences in log text, as
// Postfix does when smtputf8_enable is yes (util_utf8_enable); by default
// every byte outside printable ASCII is logged as '?'.
func (h *handler) withUTF8(enable bool) *handler {
	h2 := *h
	h2.utf8 = enable
	return &h2
}

// Enabled reports whether level is at or above the handler's level.
func (h *handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// Handle formats r as a Postfix line and writes it to the sink.
func (h *handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	if h.level.Level() <= slog.LevelDebug {
		b.WriteString(h.attrs)
		r.Attrs(func(a slog.Attr) bool {
			appendAttr(&b, h.prefix, a)
			return true
		})
	}
	text := printable(b.String(), h.utf8)
	if len(text) > maxText {
		text = text[:maxText]
	}
	return h.sink.WriteLog(r.Time, r.Level, severityPrefix(r.Level)+text)
}

// WithAttrs returns a handler that adds attrs (shown at debug level only).
func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
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
func (h *handler) WithGroup(name string) slog.Handler {
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
// '?' that printable would make of it.
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

// severityPrefix returns Postfix's text prefix for level: "" for info and
// debug, "warning: ", "error: " or "fatal: ".
func severityPrefix(level slog.Level) string {
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
