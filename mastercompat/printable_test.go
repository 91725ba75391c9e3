package mastercompat

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestPrintable(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		ascii    string // utf8 false (util_utf8_enable = 0)
		withUTF8 string // utf8 true (smtputf8_enable = yes)
	}{
		{"plain", "smtp:example.com", "smtp:example.com", "smtp:example.com"},
		{"empty", "", "", ""},
		{"forged line", "x\npostfix/scache[1]: fatal: FORGED LINE", "x?postfix/scache[1]: fatal: FORGED LINE", "x?postfix/scache[1]: fatal: FORGED LINE"},
		{"crlf", "a\r\n", "a??", "a??"},
		{"tab and DEL", "a\tb\x7f", "a?b?", "a?b?"},
		{"NUL", "a\x00b", "a?b", "a?b"},
		{"escape sequence", "\x1b[31mred", "?[31mred", "?[31mred"},
		{"two-byte UTF-8", "caf\xc3\xa9", "caf??", "caf\xc3\xa9"},
		{"three-byte UTF-8", "\xe2\x82\xac1", "???1", "\xe2\x82\xac1"},
		{"overlong lead C0", "\xc0\x80", "??", "??"},
		{"lead C1", "\xc1\xbf", "??", "??"},
		{"lead FF", "\xff\x80", "??", "??"},
		{"lone continuation", "\x80a", "?a", "?a"},
		{"lead without continuation", "\xc3a", "?a", "?a"},
		{"lead at the end", "a\xc3", "a?", "a?"},
		// Postfix 3.7 keeps every continuation byte after a valid lead.
		{"lenient run of continuations", "\xc3\xa9\x80\x80!", "????!", "\xc3\xa9\x80\x80!"},
		{"truncated three-byte", "\xe2\x82x", "??x", "\xe2\x82x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := printable(tt.in, false); got != tt.ascii {
				t.Errorf("printable(%q, false) = %q, want %q", tt.in, got, tt.ascii)
			}
			if got := printable(tt.in, true); got != tt.withUTF8 {
				t.Errorf("printable(%q, true) = %q, want %q", tt.in, got, tt.withUTF8)
			}
		})
	}
}

func TestPrintable_noAllocation(t *testing.T) {
	s := "statistics: domain lookup hits=21 miss=8 success=72%"
	if n := testing.AllocsPerRun(100, func() { _ = printable(s, false) }); n != 0 {
		t.Errorf("Printable of clean text allocates %v times", n)
	}
}

// TestHandler_sanitizes checks that client bytes reach neither the message
// nor the debug key=value part raw.
func TestHandler_sanitizes(t *testing.T) {
	const forged = "x\npostfix/scache[1]: fatal: FORGED LINE"
	tests := []struct {
		name string
		utf8 bool
		log  func(*slog.Logger)
		want string
	}{
		{"message", false, func(l *slog.Logger) { l.Warn("unrecognized request: \"" + forged + "\", ignored") },
			"postfix/scache[42]: warning: unrecognized request: \"x?postfix/scache[1]: fatal: FORGED LINE\", ignored\n"},
		{"attribute quoted", false, func(l *slog.Logger) { l.Debug("request", "request", forged) },
			"postfix/scache[42]: request request=\"x\\npostfix/scache[1]: fatal: FORGED LINE\"\n"},
		{"attribute control bytes", false, func(l *slog.Logger) { l.Debug("miss", "label", "a\rb\x01") },
			"postfix/scache[42]: miss label=\"a\\rb\\x01\"\n"},
		{"attribute invalid UTF-8", false, func(l *slog.Logger) { l.Debug("miss", "label", "\xff") },
			"postfix/scache[42]: miss label=\"\\xff\"\n"},
		{"attribute UTF-8 masked", false, func(l *slog.Logger) { l.Debug("miss", "label", "caf\xc3\xa9") },
			"postfix/scache[42]: miss label=caf??\n"},
		{"attribute UTF-8 kept", true, func(l *slog.Logger) { l.Debug("miss", "label", "caf\xc3\xa9") },
			"postfix/scache[42]: miss label=caf\xc3\xa9\n"},
		{"WithAttrs", false, func(l *slog.Logger) { l.With("label", "a\nb").Debug("hit") },
			"postfix/scache[42]: hit label=\"a\\nb\"\n"},
		{"group key", false, func(l *slog.Logger) { l.WithGroup("g\n").Debug("m", "k", 1) },
			"postfix/scache[42]: m g?.k=1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var lv slog.LevelVar
			lv.Set(slog.LevelDebug)
			tt.log(slog.New(NewStderrHandler(&buf, "postfix/scache", 42, &lv).(*handler).withUTF8(tt.utf8)))
			if got := buf.String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// FuzzHandler logs arbitrary client strings as a message, a message part,
// attribute values and keys, with and without UTF-8, at debug level: every
// line written must start with the tag, end with its only newline, and
// hold nothing but printable ASCII (plus UTF-8 sequences when enabled).
func FuzzHandler(f *testing.F) {
	for _, s := range []string{"", "x\npostfix/scache[1]: fatal: FORGED LINE", "caf\xc3\xa9", "\xff\xfe\x00\r\n\t", "a=b \"c\""} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, withUTF8 bool) {
		var buf bytes.Buffer
		var lv slog.LevelVar
		lv.Set(slog.LevelDebug)
		l := slog.New(NewStderrHandler(&buf, "postfix/scache", 7, &lv).(*handler).withUTF8(withUTF8))
		l.Warn(s)
		l.Warn("unrecognized request: \""+s+"\", ignored", "request", s)
		l.With("label", s).WithGroup(s).Debug("hit", s, s)
		l.Info("x", slog.Group(s, "k", s))
		checkLogLines(t, buf.String(), "postfix/scache[7]: ", 4, withUTF8)
	})
}

// checkLogLines fails t unless out is exactly n lines, each starting with
// tag, with no byte outside printable ASCII but the final newline (bytes
// 0x80 and above are allowed when utf8 is set: printable keeps UTF-8 then,
// never a control byte).
func checkLogLines(t *testing.T, out, tag string, n int, utf8 bool) {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end with a newline: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d: %q", len(lines), n, out)
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, tag) {
			t.Errorf("line does not start with %q: %q", tag, line)
		}
		for i := 0; i < len(line); i++ {
			if ch := line[i]; ch < 0x20 || ch == 0x7f || (ch >= 0x80 && !utf8) {
				t.Errorf("byte %#x at %d in line %q", ch, i, line)
				break
			}
		}
	}
}
