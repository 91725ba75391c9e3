package sink_test

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goscache/goscache/compat-tests/sink"
)

func startSink(t *testing.T, withTLS bool) *sink.Sink {
	t.Helper()
	cfg := sink.Config{
		Addrs:  []string{"127.0.0.1:0", "127.0.0.1:0"},
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	if withTLS {
		tc, err := sink.SelfSignedTLS("127.0.0.1", "localhost")
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tc
	}
	s, err := sink.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client speaks SMTP the way smtp(8) does (DATA, never BDAT).
type client struct {
	t  *testing.T
	nc net.Conn
	c  *textproto.Conn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	network := "tcp"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
	}
	nc, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, nc: nc, c: textproto.NewConn(nc)}
	t.Cleanup(func() { c.c.Close() })
	if _, _, err := c.c.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *client) cmd(code int, format string, args ...any) {
	c.t.Helper()
	if _, err := c.c.Cmd(format, args...); err != nil {
		c.t.Fatal(err)
	}
	if _, _, err := c.c.ReadResponse(code); err != nil {
		c.t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

func (c *client) send(id string) {
	c.t.Helper()
	c.cmd(250, "MAIL FROM:<a@example.test>")
	c.cmd(250, "RCPT TO:<b@example.test>")
	c.cmd(354, "DATA")
	c.cmd(250, "Message-ID: <%s>\r\nSubject: %s\r\n\r\nbody\r\n.", id, id)
}

func TestSink_counts(t *testing.T) {
	s := startSink(t, false)
	addr := s.Addrs()[0]
	c := dial(t, addr)
	c.cmd(250, "EHLO client.test")
	c.send("m1@test")
	c.cmd(250, "RSET")
	c.send("m2@test")
	c.send("m1@test")
	c.cmd(221, "QUIT")
	want := sink.Counts{Conns: 1, Sessions: 1, Messages: 3, Rsets: 1}
	if diff := cmp.Diff(want, s.Counts(addr)); diff != "" {
		t.Errorf("counts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sink.Counts{}, s.Counts(s.Addrs()[1])); diff != "" {
		t.Errorf("other address counts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"<m1@test> b@example.test"}, sink.Duplicates(s.Messages())); diff != "" {
		t.Errorf("duplicates mismatch (-want +got):\n%s", diff)
	}
	s.Reset()
	if got := s.Total(); got != (sink.Counts{}) {
		t.Errorf("after Reset: %+v", got)
	}
}

func TestSink_refuseEvery(t *testing.T) {
	s := startSink(t, false)
	addr := s.Addrs()[1]
	s.SetBehavior(addr, sink.Behavior{RefuseEvery: 2})
	var refused int
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 512)
		n, _ := c.Read(buf)
		if strings.HasPrefix(string(buf[:n]), "421") {
			refused++
		}
		c.Close()
	}
	if refused != 2 {
		t.Errorf("refused %d of 4 connections, want 2", refused)
	}
	if got := s.Counts(addr); got.Conns != 4 || got.Refused != 2 {
		t.Errorf("counts %+v, want 4 conns, 2 refused", got)
	}
}

func TestSink_idleClose(t *testing.T) {
	s := startSink(t, false)
	addr := s.Addrs()[0]
	s.SetBehavior(addr, sink.Behavior{IdleClose: 100 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	var got []byte
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if !strings.Contains(string(got), "421") {
		t.Errorf("idle connection ended without a 421 reply: %q", got)
	}
}

func TestSink_startTLS(t *testing.T) {
	s := startSink(t, true)
	addr := s.Addrs()[0]
	c := dial(t, addr)
	c.cmd(250, "EHLO client.test")
	c.cmd(220, "STARTTLS")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	c = &client{t: t, nc: tc, c: textproto.NewConn(tc)}
	c.cmd(250, "EHLO client.test")
	c.send("tls@test")
	c.cmd(221, "QUIT")
	want := sink.Counts{Conns: 1, Sessions: 1, TLS: 1, Messages: 1}
	if diff := cmp.Diff(want, s.Counts(addr)); diff != "" {
		t.Errorf("counts mismatch (-want +got):\n%s", diff)
	}
	if m := s.Messages(); len(m) != 1 || !m[0].TLS {
		t.Errorf("message not marked TLS: %+v", m)
	}
}

func TestStart_badAddrs(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "unix:relative/sock", "127.0.0.1"} {
		if s, err := sink.Start(sink.Config{Addrs: []string{addr}}); err == nil {
			s.Close()
			t.Errorf("Start accepted %q", addr)
		}
	}
}

// TestSink_lmtp: a "unix:" address is an LMTP server (LHLO, not EHLO) on a
// socket anyone may connect to, as lmtp(8) running as mail_owner must.
func TestSink_lmtp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lmtp")
	s, err := sink.Start(sink.Config{Addrs: []string{"unix:" + path}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if got := s.Addrs(); len(got) != 1 || got[0] != "unix:"+path {
		t.Errorf("Addrs() = %q", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode: %v, %v", fi.Mode(), err)
	}
	c := dial(t, "unix:"+path)
	c.cmd(500, "EHLO client.test")
	c.cmd(250, "LHLO client.test")
	c.send("l1@test")
	c.cmd(250, "RSET")
	c.send("l2@test")
	c.cmd(221, "QUIT")
	want := sink.Counts{Conns: 1, Sessions: 1, Messages: 2, Rsets: 1}
	if diff := cmp.Diff(want, s.Counts("unix:"+path)); diff != "" {
		t.Errorf("counts mismatch (-want +got):\n%s", diff)
	}
}

// TestSink_ipv6 needs ::1; a host without it skips, saying so.
func TestSink_ipv6(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	l.Close()
	s, err := sink.Start(sink.Config{Addrs: []string{"[::1]:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr := s.Addrs()[0]
	if !strings.HasPrefix(addr, "[::1]:") {
		t.Fatalf("Addrs() = %q", addr)
	}
	c := dial(t, addr)
	c.cmd(250, "EHLO client.test")
	c.send("v6@test")
	if got := s.Counts(addr); got.Sessions != 1 || got.Messages != 1 {
		t.Errorf("counts %+v, want 1 session, 1 message", got)
	}
}

// A slow server still answers every command, and each message carries the
// time its DATA ended, between the moments before and after the session.
func TestSink_replyDelay(t *testing.T) {
	s := startSink(t, false)
	addr := s.Addrs()[0]
	s.SetBehavior(addr, sink.Behavior{ReplyDelay: 10 * time.Millisecond})
	before := time.Now()
	c := dial(t, addr)
	c.cmd(250, "EHLO client.test")
	c.send("slow@test")
	c.cmd(221, "QUIT")
	after := time.Now()
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].MessageID != "<slow@test>" {
		t.Fatalf("messages %+v, want one <slow@test>", msgs)
	}
	if at := msgs[0].At; at.Before(before) || at.After(after) {
		t.Errorf("At %v not within the session [%v, %v]", at, before, after)
	}
}

// A client that dies in the middle of DATA delivered nothing: the message
// is not counted (postfix stop ends smtp(8) at any point of a delivery).
func TestSink_brokenData(t *testing.T) {
	s := startSink(t, false)
	addr := s.Addrs()[0]
	c := dial(t, addr)
	c.cmd(250, "EHLO client.test")
	c.cmd(250, "MAIL FROM:<a@example.test>")
	c.cmd(250, "RCPT TO:<b@example.test>")
	c.cmd(354, "DATA")
	if _, err := c.nc.Write([]byte("Message-ID: <broken@test>\r\n\r\nhalf a bo")); err != nil {
		t.Fatal(err)
	}
	c.nc.Close()
	// Shutdown returns once every connection's handler has finished.
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := s.Messages(); len(got) != 0 {
		t.Errorf("messages %+v, want none from a broken DATA", got)
	}
	if got := s.Counts(addr).Messages; got != 0 {
		t.Errorf("Messages count %d, want 0", got)
	}
}
