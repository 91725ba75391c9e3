// Package scachetest starts scache servers for tests, in the manner of
// net/http/httptest: a Server on a Unix socket in t.TempDir(), stopped by
// t.Cleanup, with helpers that connect protocol clients and raw
// connections to it.
package scachetest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/server"
)

// Announcement is the 36-byte record a server writes on every new
// connection.
const Announcement = "protocol\x00connection_cache_protocol\x00\x00"

// Server is a running server.Server on a Unix socket.
type Server struct {
	// Path is the socket's file name.
	Path string
	// Srv is the server.
	Srv *server.Server
	// NoAnnouncement is true when Srv speaks Postfix 3.5's protocol
	// (Options.NoAnnouncement): Raw then reads no announcement.
	NoAnnouncement bool

	done chan error
}

// NewServer starts a Server configured by o on a fresh socket under
// t.TempDir(); a nil o.Logger logs to t.Output(). The server is closed, and
// Serve's result checked, when the test ends.
func NewServer(t testing.TB, o server.Options) *Server {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := Serve(t, server.New(o))
	s.NoAnnouncement = o.NoAnnouncement
	return s
}

// Serve starts srv on a fresh socket under t.TempDir(). The server is
// closed, and Serve's result checked, when the test ends.
func Serve(t testing.TB, srv *server.Server) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scache")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("scachetest: listen: %v", err)
	}
	s := &Server{Path: path, Srv: srv, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("scachetest: shutdown: %v", err)
		}
		if err := <-s.done; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("scachetest: Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s
}

// Client connects a protocol client, closed when the test ends.
func (s *Server) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.Dial(t.Context(), s.Path)
	if err != nil {
		t.Fatalf("scachetest: dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Raw connects a plain socket, reads and checks the announcement (unless
// the server speaks Postfix 3.5's protocol, which has none), and returns
// the connection, closed when the test ends.
func (s *Server) Raw(t testing.TB) *net.UnixConn {
	t.Helper()
	nc, err := net.Dial("unix", s.Path)
	if err != nil {
		t.Fatalf("scachetest: dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	if s.NoAnnouncement {
		return nc.(*net.UnixConn)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second)) // best effort: the read below then waits for the server
	buf := make([]byte, len(Announcement))
	if _, err := io.ReadFull(nc, buf); err != nil {
		t.Fatalf("scachetest: read announcement: %v", err)
	}
	if string(buf) != Announcement {
		t.Fatalf("scachetest: announcement %q, want %q", buf, Announcement)
	}
	_ = nc.SetReadDeadline(time.Time{}) // fails only on a closed connection, which the caller's next read reports
	return nc.(*net.UnixConn)
}

// NoExtensions starts a server on a fresh socket that answers the way
// Postfix's own scache answers a request it cannot serve: status=1, with
// the empty properties of a failed find, and status=1 alone to anything
// else, the extension requests included. It announces its protocol, as
// Postfix 3.6 and later do. It returns the socket's path.
func NoExtensions(t testing.TB) string {
	t.Helper()
	return noExtensions(t, true)
}

// NoExtensions35 is NoExtensions speaking Postfix 3.5's protocol: no
// announcement, the first thing it writes is the reply to the first
// request.
func NoExtensions35(t testing.TB) string {
	t.Helper()
	return noExtensions(t, false)
}

func noExtensions(t testing.TB, announce bool) string {
	t.Helper()
	return fdtest.ServeUnix(t, func(nc net.Conn) {
		enc := attr.NewEncoder(bufio.NewWriter(nc), attr.Format0)
		dec := attr.NewDecoder(bufio.NewReader(nc), attr.Format0, attr.Limits{})
		if announce {
			_ = enc.Encode(attr.List{attr.Str("protocol", "connection_cache_protocol")}) // a client that hung up: the decode below ends the loop
		}
		for {
			l, err := dec.Decode()
			if err != nil {
				return
			}
			reply := attr.List{attr.Str("status", "1")}
			switch req, _ := l.Get("request"); req {
			case scache.ReqFindEndp:
				reply = append(reply, attr.Str("property", ""))
			case scache.ReqFindDest:
				reply = append(reply, attr.Str("property", ""), attr.Str("property", ""))
			}
			_ = enc.Encode(reply) // a client that hung up: the next decode ends the loop
		}
	})
}
