package server_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
)

// FuzzServer feeds arbitrary client bytes to a running server: whatever
// arrives, the server must not panic (its per-connection recover would log
// it), must end the connection when the client half-closes, and must go
// on serving other clients.
func FuzzServer(f *testing.F) {
	seeds := []string{
		"request\x00find_dest\x00label\x00smtp\nexample.com\n\x00\x00",
		"request\x00find_endp\x00label\x00smtp\n127.0.0.1\n25\n0\n\x00\x00",
		"request\x00save_dest\x00ttl\x002\x00label\x00d\x00property\x00p\x00label\x00e\x00\x00",
		"request\x00save_endp\x00ttl\x002\x00label\x00e\x00property\x00p\x00\x00",
		"request\x00save_endp\x00ttl\x00-2\x00label\x00e\x00property\x00p\x00\x00",
		"request\x00frob\x00\x00dummy\x00\x00\x00",
		"foo\x00request\x00find_endp\x00label\x00x\x00\x00",
		"request\x00goscache_stats\x00\x00request\x00goscache_dump\x00\x00",
		"request\x00find_dest\x00label\x00x\x00extra\x00y\x00\x00request\x00find",
		"{\x00a\x00b\x00}\x00\x00",
	}
	// The recorded bad-input conversations are seeds too.
	if b, err := os.ReadFile(filepath.Join("testdata", "bad_input.json")); err == nil {
		seeds = append(seeds, string(b[:min(len(b), 4096)]))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	// The server's log is watched for a panic record, not kept: a
	// buffer scanned after every input grows with the warnings the inputs
	// cause, and the target slowed to a few hundred executions a second.
	panics := &panicWatch{}
	ts := scachetest.NewServer(f, server.Options{
		Logger:     slog.New(panics),
		IPCTimeout: 5 * time.Second,
	})
	// One client for the check after each input: the server must still
	// serve it, whatever the inputs did to other connections.
	c := ts.Client(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		nc := ts.Raw(t)
		if _, err := nc.Write(in); err != nil {
			return // the server may close on a limit: fine
		}
		nc.CloseWrite()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, nc); err != nil {
			t.Fatalf("the server did not end the connection after the client half-closed: %v", err)
		}
		if msg := panics.first.Load(); msg != nil {
			t.Fatalf("server panicked: %s", *msg)
		}
		// Still serving, and nothing cached by the fuzz input leaked into
		// a lookup it cannot have made.
		if res, err := c.FindEndp("fuzz-never-saved"); err != nil || res.Status != scache.StatusFail {
			t.Fatalf("find_endp after fuzz input = %d, %v; want a miss", res.Status, err)
		}
	})
}

// panicWatch is a slog.Handler that keeps the first record that reports a
// panic (the server's per-connection recover logs "panic serving client:
// ..." with the stack) and drops everything else.
type panicWatch struct {
	first atomic.Pointer[string]
}

func (h *panicWatch) Enabled(context.Context, slog.Level) bool { return true }

func (h *panicWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool {
			msg += "\n" + a.String()
			return true
		})
		h.first.CompareAndSwap(nil, &msg)
	}
	return nil
}

func (h *panicWatch) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicWatch) WithGroup(string) slog.Handler      { return h }
