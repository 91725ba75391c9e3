package server_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
)

// TestServer_noAnnouncement: with NoAnnouncement the first bytes a client
// reads are the reply to its first request, as from Postfix 3.5's scache
// (a find_dest miss: status=2 and two empty properties), and the rest of
// the conversation is unchanged.
func TestServer_noAnnouncement(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts server.Options
		want string // everything read after the first request
	}{
		{"3.6 and later", server.Options{}, scachetest.Announcement + findDestMiss},
		{"3.5", server.Options{NoAnnouncement: true}, findDestMiss},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := scachetest.NewServer(t, tc.opts)
			nc, err := net.Dial("unix", ts.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			mustWrite(t, nc, "request\x00find_dest\x00label\x00nowhere\x00\x00")
			mustRead(t, nc, tc.want)
			// A second request on the same connection: only its reply.
			mustWrite(t, nc, "request\x00find_endp\x00label\x00nowhere\x00\x00")
			mustRead(t, nc, "status\x002\x00property\x00\x00\x00")
		})
	}
}

const findDestMiss = "status\x002\x00property\x00\x00property\x00\x00\x00"

// TestClient_announcement runs the Client against servers that announce
// and servers that do not (Postfix 3.5), with each kind of request first:
// the Client never waits for an announcement, reads one when it comes, and
// says which it was.
func TestClient_announcement(t *testing.T) {
	servers := []struct {
		name     string
		start    func(t *testing.T) string
		announce bool
		ext      bool // serves the extension requests
	}{
		{"goscache", func(t *testing.T) string { return scachetest.NewServer(t, server.Options{}).Path }, true, true},
		{"goscache 3.5", func(t *testing.T) string {
			return scachetest.NewServer(t, server.Options{NoAnnouncement: true}).Path
		}, false, true},
		{"postfix 3.6+", func(t *testing.T) string { return scachetest.NoExtensions(t) }, true, false},
		{"postfix 3.5", func(t *testing.T) string { return scachetest.NoExtensions35(t) }, false, false},
	}
	// The stubs answer status=1 to everything (scachetest.NoExtensions).
	miss := map[bool]scache.Status{true: scache.StatusFail, false: scache.StatusBad}
	ok := map[bool]scache.Status{true: scache.StatusOK, false: scache.StatusBad}
	first := []struct {
		name string
		do   func(t *testing.T, c *client.Client, ext bool) error
	}{
		{"find_dest", func(t *testing.T, c *client.Client, ext bool) error {
			res, err := c.FindDest("nowhere")
			return wantStatus(res.Status, err, miss[ext])
		}},
		{"find_endp", func(t *testing.T, c *client.Client, ext bool) error {
			res, err := c.FindEndp("nowhere")
			return wantStatus(res.Status, err, miss[ext])
		}},
		{"save_dest", func(t *testing.T, c *client.Client, ext bool) error {
			st, err := c.SaveDest("D", "P", "E", time.Second)
			return wantStatus(st, err, ok[ext])
		}},
		{"save_endp", func(t *testing.T, c *client.Client, ext bool) error {
			if !ext {
				t.Skip("the stub takes no descriptor")
			}
			st, err := c.SaveEndp("E", "p", fdtest.PipeFD(t), time.Second)
			return wantStatus(st, err, scache.StatusOK)
		}},
		{"goscache_stats", func(t *testing.T, c *client.Client, ext bool) error {
			_, err := c.ServerStats()
			if !ext && errors.Is(err, client.ErrNoExtensions) {
				return nil
			}
			return err
		}},
	}
	for _, srv := range servers {
		for _, f := range first {
			t.Run(srv.name+"/"+f.name, func(t *testing.T) {
				path := srv.start(t)
				c, err := client.Dial(t.Context(), path)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.Timeout = time.Minute // a wait for an announcement would show as a hang, not a pass
				if err := f.do(t, c, srv.ext); err != nil {
					t.Fatalf("first request: %v", err)
				}
				if got := c.Announced(); got != srv.announce {
					t.Errorf("Announced() = %v, want %v", got, srv.announce)
				}
				// The next request reads no second announcement.
				if res, err := c.FindDest("nowhere"); err != nil || res.Status != miss[srv.ext] {
					t.Errorf("second request: %d, %v", res.Status, err)
				}
			})
		}
	}
}

func wantStatus(st scache.Status, err error, want scache.Status) error {
	if err != nil {
		return err
	}
	if st != want {
		return fmt.Errorf("status %d, want %d", st, want)
	}
	return nil
}

// TestClient_badStart: a wrong announcement, or a server that closes the
// connection before writing anything, fails the first request with
// ErrAnnouncement.
func TestClient_badStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(nc net.Conn)
		want  error
	}{
		{"wrong protocol", func(nc net.Conn) { nc.Write([]byte("protocol\x00something_else\x00\x00")) }, attr.ErrUnexpectedValue},
		{"closed", func(nc net.Conn) { nc.Close() }, io.ErrUnexpectedEOF},
		{"closed after p", func(nc net.Conn) { nc.Write([]byte("proto")); nc.Close() }, client.ErrAnnouncement},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fdtest.ServeUnix(t, tc.serve)
			c, err := client.Dial(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.FindDest("x")
			if !errors.Is(err, client.ErrAnnouncement) || !errors.Is(err, tc.want) {
				t.Errorf("FindDest: %v, want ErrAnnouncement and %v", err, tc.want)
			}
		})
	}
}
