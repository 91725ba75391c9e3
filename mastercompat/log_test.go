package mastercompat

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHandler(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		log   func(*slog.Logger)
		want  string
	}{
		{"info", slog.LevelInfo, func(l *slog.Logger) { l.Info("statistics: start interval Nov  3 16:04:31") },
			"postfix/scache[42]: statistics: start interval Nov  3 16:04:31\n"},
		{"warning without attrs", slog.LevelInfo, func(l *slog.Logger) {
			l.Warn("scache_save_endp_service: bad or missing request parameter", "request", "save_endp")
		}, "postfix/scache[42]: warning: scache_save_endp_service: bad or missing request parameter\n"},
		{"error", slog.LevelInfo, func(l *slog.Logger) { l.Error("accept connection: Too many open files") },
			"postfix/scache[42]: error: accept connection: Too many open files\n"},
		{"fatal", slog.LevelInfo, func(l *slog.Logger) { l.Log(context.Background(), LevelFatal, "bad generation: 9x") },
			"postfix/scache[42]: fatal: bad generation: 9x\n"},
		{"debug hidden", slog.LevelInfo, func(l *slog.Logger) { l.Debug("connection established") }, ""},
		{"debug shows attrs", slog.LevelDebug, func(l *slog.Logger) {
			l.With("conn", 3).WithGroup("req").Debug("request", "name", "find_dest", "label", "a b")
		}, "postfix/scache[42]: request conn=3 req.name=find_dest req.label=\"a b\"\n"},
		{"warning attrs at debug", slog.LevelDebug, func(l *slog.Logger) { l.Warn("x", "fd", 7) },
			"postfix/scache[42]: warning: x fd=7\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var lv slog.LevelVar
			lv.Set(tt.level)
			tt.log(slog.New(NewStderrHandler(&buf, "postfix/scache", 42, &lv)))
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("output mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHandler_truncates(t *testing.T) {
	var buf bytes.Buffer
	slog.New(NewStderrHandler(&buf, "t", 1, nil)).Warn(strings.Repeat("x", 3000))
	want := "t[1]: warning: " + strings.Repeat("x", maxText) + "\n"
	if buf.String() != want {
		t.Errorf("got %d bytes, want %d", buf.Len(), len(want))
	}
}

func TestWriterSink_noPID(t *testing.T) {
	var buf bytes.Buffer
	s := &writerSink{W: &buf, Tag: "postfix/scache"}
	s.WriteLog(time.Now(), slog.LevelWarn, "warning: x")
	if got, want := buf.String(), "postfix/scache: warning: x\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// listenDgram returns a datagram socket standing in for /dev/log or
// postlogd, and a function that receives one message.
func listenDgram(t *testing.T) (string, func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return path, func() string {
		buf := make([]byte, 4096)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
}

func TestSyslog(t *testing.T) {
	path, recv := listenDgram(t)
	s, err := dialSyslog(path, "postfix/scache", 4242, "mail")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := slog.New(newHandler(s, nil))
	tests := []struct {
		log  func()
		want string
	}{
		{func() { l.Info("statistics: x") }, `<22>... .. ..:..:.. postfix/scache[4242]: statistics: x`},
		{func() { l.Warn("w") }, `<20>... .. ..:..:.. postfix/scache[4242]: warning: w`},
		{func() { l.Error("e") }, `<19>... .. ..:..:.. postfix/scache[4242]: error: e`},
		{func() { l.Log(context.Background(), LevelFatal, "f") }, `<18>... .. ..:..:.. postfix/scache[4242]: fatal: f`},
	}
	for _, tt := range tests {
		tt.log()
		got := recv()
		// glibc's time stamp: "Mmm dd hh:mm:ss" with a space-padded day.
		re := regexp.MustCompile(`^<\d+>[A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d `)
		if !re.MatchString(got) {
			t.Errorf("bad time stamp: %q", got)
			continue
		}
		masked := got[:strings.IndexByte(got, '>')+1] + "... .. ..:..:.." + got[strings.IndexByte(got, '>')+16:]
		if masked != tt.want {
			t.Errorf("got %q, want %q", masked, tt.want)
		}
	}
}

func TestSyslog_facility(t *testing.T) {
	path, recv := listenDgram(t)
	for _, tt := range []struct {
		name string
		pri  string
	}{{"local7", "<190>"}, {"daemon", "<30>"}, {"user", "<14>"}, {"authpriv", "<86>"}} {
		s, err := dialSyslog(path, "t", 1, tt.name)
		if err != nil {
			t.Fatal(err)
		}
		s.WriteLog(time.Now(), slog.LevelInfo, "x")
		if got := recv(); !strings.HasPrefix(got, tt.pri) {
			t.Errorf("facility %s: got %q, want prefix %s", tt.name, got, tt.pri)
		}
		s.Close()
	}
	if _, err := dialSyslog(path, "t", 1, "mial"); err == nil {
		t.Error("DialSyslog accepted facility mial")
	}
}

func TestSyslog_stream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := dialSyslog(path, "postfix/scache", 7, "mail")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := s.WriteLog(time.Date(2026, 3, 5, 1, 2, 3, 0, time.Local), slog.LevelInfo, "hello"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:n]), "<22>Mar  5 01:02:03 postfix/scache[7]: hello\x00"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPostlog(t *testing.T) {
	path, recv := listenDgram(t)
	p, err := dialPostlog(path, "postfix/scache", "mx1.example.net", 4242)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l := slog.New(newHandler(p, nil))
	l.Warn("close(7): Bad file descriptor")
	got := recv()
	re := regexp.MustCompile(`^[A-Z][a-z]{2} [0-3]\d \d\d:\d\d:\d\d mx1 postfix/scache\[4242\]: warning: close\(7\): Bad file descriptor$`)
	if !re.MatchString(got) {
		t.Errorf("postlog record %q does not match %s", got, re)
	}
	p.WriteLog(time.Date(2026, 3, 5, 1, 2, 3, 0, time.Local), slog.LevelInfo, "statistics: x")
	if got, want := recv(), "Mar 05 01:02:03 mx1 postfix/scache[4242]: statistics: x"; got != want {
		t.Errorf("got %q, want %q (zero-padded day)", got, want)
	}
}

func TestOpenLog(t *testing.T) {
	qdir := t.TempDir()
	pub := filepath.Join(qdir, "public")
	if err := mkdir(pub); err != nil {
		t.Fatal(err)
	}
	pl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(pub, "postlog"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	sysPath, recvSyslog := listenDgram(t)
	p := Params{QueueDirectory: qdir, PostlogServiceName: "postlog", MyHostname: "h.example", SyslogFacility: "mail",
		MaillogFilePrefixes: "/var, /dev/stdout"}

	t.Run("syslog when maillog_file is empty", func(t *testing.T) {
		var stderr bytes.Buffer
		sink, closer, err := openLogSink(logOptions{Params: p, Tag: "postfix/scache", PID: 9, SyslogPath: sysPath, Stderr: &stderr})
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		sink.WriteLog(time.Now(), slog.LevelWarn, "warning: w")
		if got := recvSyslog(); !strings.HasSuffix(got, " postfix/scache[9]: warning: w") {
			t.Errorf("syslog got %q", got)
		}
		if got, want := stderr.String(), "postfix/scache: warning: w\n"; got != want {
			t.Errorf("-V stderr got %q, want %q", got, want)
		}
	})
	t.Run("postlog when maillog_file is set", func(t *testing.T) {
		p := p
		p.MaillogFile = "/var/log/postfix.log"
		sink, closer, err := openLogSink(logOptions{Params: p, Tag: "postfix/scache", PID: 9, SyslogPath: sysPath})
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		sink.WriteLog(time.Now(), slog.LevelInfo, "i")
		buf := make([]byte, 200)
		n, _, err := pl.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); !strings.HasSuffix(got, " h postfix/scache[9]: i") {
			t.Errorf("postlog got %q", got)
		}
	})
	t.Run("maillog_file prefix", func(t *testing.T) {
		p := p
		p.MaillogFile = "/tmp/x.log"
		_, _, err := openLogSink(logOptions{Params: p, Tag: "t"})
		fe, ok := errors.AsType[*FatalError](err)
		if want := "maillog_file value '/tmp/x.log' does not match any prefix in maillog_file_prefixes"; !ok || fe.Text != want {
			t.Errorf("OpenLog error = %v, want %q", err, want)
		}
	})
	t.Run("bad facility", func(t *testing.T) {
		p := p
		p.SyslogFacility = "nope"
		_, _, err := openLogSink(logOptions{Params: p, ConfigDir: "/etc/postfix", Tag: "t", SyslogPath: sysPath})
		fe, ok := errors.AsType[*FatalError](err)
		if want := "file /etc/postfix/main.cf: parameter syslog_facility: unrecognized value: nope"; !ok || fe.Text != want {
			t.Errorf("OpenLog error = %v, want %q", err, want)
		}
	})
}
