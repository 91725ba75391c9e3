package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
)

// The transcripts in testdata/bad_input.json were recorded from the real
// scache(8) of Postfix 3.7.11 (Debian 12), run outside master as described
// in PROTOCOL.md §6.10 Option A, with -V so that its warnings went to
// stderr. Each case is one connection: the client's steps, the bytes the
// real server sent after each step, and the warnings it logged. Warnings
// that end in an errno text ("%m") have it replaced by "<errno>".

type replayStep struct {
	Op      string `json:"op"`
	Data    string `json:"data,omitempty"`
	FDs     int    `json:"fds,omitempty"`
	Reply   string `json:"reply"`
	RecvFDs int    `json:"recv_fds,omitempty"`
	EOF     bool   `json:"eof,omitempty"`
}

type replayCase struct {
	Name     string       `json:"name"`
	Note     string       `json:"note,omitempty"`
	Steps    []replayStep `json:"steps"`
	Warnings []string     `json:"warnings"`
}

var errnoRE = regexp.MustCompile(`(unable to receive file descriptor|cannot send file descriptor|close\(\d+\)): .*`)

// warnRecorder is a slog.Handler that keeps the message of every record at
// Warn or above, and passes everything to next.
type warnRecorder struct {
	next slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func newWarnRecorder(next slog.Handler) *warnRecorder {
	return &warnRecorder{next: next, mu: new(sync.Mutex), msgs: new([]string)}
}

func (h *warnRecorder) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *warnRecorder) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.mu.Lock()
		*h.msgs = append(*h.msgs, errnoRE.ReplaceAllString(r.Message, "$1: <errno>"))
		h.mu.Unlock()
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *warnRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &warnRecorder{next: h.next.WithAttrs(as), mu: h.mu, msgs: h.msgs}
}

func (h *warnRecorder) WithGroup(name string) slog.Handler {
	return &warnRecorder{next: h.next.WithGroup(name), mu: h.mu, msgs: h.msgs}
}

// take returns the warnings recorded so far and forgets them.
func (h *warnRecorder) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := *h.msgs
	*h.msgs = nil
	if m == nil {
		m = []string{}
	}
	return m
}

func loadReplay(t *testing.T) []replayCase {
	t.Helper()
	b, err := os.ReadFile("testdata/bad_input.json")
	if err != nil {
		t.Fatal(err)
	}
	var cs []replayCase
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestReplayRealScache replays every recorded conversation with the real
// scache(8) against Server and requires the same bytes and the same
// warnings, both as Postfix 3.6 and later speak (an announcement first,
// then the recorded bytes) and as Postfix 3.5 does (no announcement: the
// recorded bytes only; 3.5's scache.c serves requests exactly as 3.7's).
func TestReplayRealScache(t *testing.T) {
	for _, mode := range []struct {
		name           string
		noAnnouncement bool
	}{{"announce", false}, {"3.5", true}} {
		t.Run(mode.name, func(t *testing.T) {
			rec := newWarnRecorder(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
			ts := scachetest.NewServer(t, server.Options{Logger: slog.New(rec), NoAnnouncement: mode.noAnnouncement})
			for _, tc := range loadReplay(t) {
				t.Run(tc.Name, func(t *testing.T) {
					rec.take()
					c := ts.Raw(t)
					for i, s := range tc.Steps {
						replayStepOn(t, c, i, s)
					}
					if diff := cmp.Diff(tc.Warnings, rec.take()); diff != "" {
						t.Errorf("warnings mismatch (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// TestReplayRealScache_postfix replays the same conversations against the
// installed Postfix's own scache(8), run outside master: the recordings
// must still hold for the Postfix release on this machine (in the
// compat-docker images: 3.5, 3.7, 3.10 and 3.11), bytes and warnings. The
// recordings start after the announcement, which Postfix 3.5 does not send
// (dialRealScache). Skipped where Postfix is not installed.
func TestReplayRealScache_postfix(t *testing.T) {
	sock, logs := fdtest.StartPostfixScache(t, "")
	announces := realScacheAnnounces(t)
	seen := 0
	for _, tc := range loadReplay(t) {
		t.Run(tc.Name, func(t *testing.T) {
			c := dialRealScache(t, sock, announces)
			defer c.Close()
			for i, s := range tc.Steps {
				replayStepOn(t, c, i, s)
			}
			c.Close()
			// scache logs a warning when it gets to it, possibly after
			// its last reply (end of file): wait until as many as were
			// recorded are out, then for any that should not be.
			var got []string
			for deadline := time.Now().Add(5 * time.Second); ; {
				got = postfixWarnings(logs.String())[seen:]
				if len(got) >= len(tc.Warnings) || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			probeRealScache(t, sock, announces)
			got = postfixWarnings(logs.String())[seen:]
			seen += len(got)
			if got == nil {
				got = []string{}
			}
			if diff := cmp.Diff(tc.Warnings, got); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// postfixWarnings returns the warnings in scache's -V log, errno texts
// replaced as in the recordings.
func postfixWarnings(log string) []string {
	var ws []string
	for line := range strings.Lines(log) {
		if w, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "postfix/scache: warning: "); ok {
			ws = append(ws, errnoRE.ReplaceAllString(w, "$1: <errno>"))
		}
	}
	return ws
}

// realScacheAnnounces reports whether the installed Postfix's scache
// announces its protocol (3.6 and later), from its mail_version.
func realScacheAnnounces(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("/usr/sbin/postconf", "-dh", "mail_version").Output()
	if err != nil {
		t.Fatalf("postconf -dh mail_version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	a := scache.Announces(v)
	t.Logf("Postfix %s: announcement %v", v, a)
	return a
}

// dialRealScache connects to scache and, where it announces, reads its
// announcement, which must be the one goscache sends. Where it does not
// (3.5), the replies to the requests that follow must come first, which
// replayStepOn checks byte for byte.
func dialRealScache(t *testing.T, sock string, announces bool) *net.UnixConn {
	t.Helper()
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if !announces {
		return nc.(*net.UnixConn)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len(scachetest.Announcement))
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != scachetest.Announcement {
		nc.Close()
		t.Fatalf("announcement %q (%v), want %q", buf, err, scachetest.Announcement)
	}
	nc.SetReadDeadline(time.Time{})
	return nc.(*net.UnixConn)
}

// probeRealScache sends scache a well-formed lookup and reads its answer:
// scache has then dealt with everything that came before on other
// connections that it had already seen.
func probeRealScache(t *testing.T, sock string, announces bool) {
	t.Helper()
	c := dialRealScache(t, sock, announces)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("request\x00find_dest\x00label\x00probe\x00\x00")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := c.Read(buf); err != nil {
		t.Fatalf("probe: %v", err)
	}
}

func replayStepOn(t *testing.T, c *net.UnixConn, i int, s replayStep) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	switch s.Op {
	case "send", "sendonly":
		if _, err := c.Write([]byte(s.Data)); err != nil {
			t.Fatalf("step %d: write: %v", i, err)
		}
	case "sendfd":
		var fds []int
		for range s.FDs {
			fds = append(fds, socketpair(t)[0])
		}
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		if _, _, err := c.WriteMsgUnix([]byte(s.Data), oob, nil); err != nil {
			t.Fatalf("step %d: sendmsg: %v", i, err)
		}
	case "recvfd":
		buf := make([]byte, 1)
		oob := make([]byte, 256)
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatalf("step %d: recvmsg: %v", i, err)
		}
		fds := rights(t, oob[:oobn])
		for _, fd := range fds {
			unix.Close(fd)
		}
		if string(buf[:n]) != s.Reply || len(fds) != s.RecvFDs {
			t.Fatalf("step %d: recvmsg got %q with %d fds, want %q with %d", i, buf[:n], len(fds), s.Reply, s.RecvFDs)
		}
		return
	case "closewrite":
		if err := c.CloseWrite(); err != nil {
			t.Fatalf("step %d: shutdown: %v", i, err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("step %d: read to EOF: %v (got %q)", i, err, got)
		}
		if string(got) != s.Reply {
			t.Fatalf("step %d: after close got %q, want %q", i, got, s.Reply)
		}
		return
	default:
		t.Fatalf("step %d: unknown op %q", i, s.Op)
	}
	if s.Op == "sendonly" {
		return
	}
	got := make([]byte, len(s.Reply))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("step %d (%s %q): read reply: %v (got %q, want %q)", i, s.Op, s.Data, err, got, s.Reply)
	}
	if string(got) != s.Reply {
		t.Fatalf("step %d (%s %q): reply %q, want %q", i, s.Op, s.Data, got, s.Reply)
	}
}

// socketpair returns a connected pair of Unix stream sockets, closed when
// the test ends.
func socketpair(t testing.TB) [2]int {
	t.Helper()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return [2]int{p[0], p[1]}
}

func rights(t testing.TB, oob []byte) []int {
	t.Helper()
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, m := range msgs {
		r, err := unix.ParseUnixRights(&m)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, r...)
	}
	return fds
}
