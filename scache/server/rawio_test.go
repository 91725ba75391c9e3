package server

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/goscache/goscache/scache/fdtest"
)

// TestRawIO checks the raw reads and writes against what net.Conn gives:
// data both ways, a deadline, the end of the stream, a write to a peer
// that has gone (EPIPE, no signal kills the process).
func TestRawIO(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, r *rawIO, a, b *net.UnixConn)
	}{
		{"data", func(t *testing.T, r *rawIO, a, b *net.UnixConn) {
			if n, err := r.Write([]byte("ping\x00")); n != 5 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			buf := make([]byte, 16)
			if n, err := io.ReadFull(b, buf[:5]); n != 5 || err != nil || string(buf[:5]) != "ping\x00" {
				t.Fatalf("peer read %q, %v", buf[:n], err)
			}
			b.Write([]byte("pong"))
			if n, err := r.Read(buf); n != 4 || err != nil || string(buf[:4]) != "pong" {
				t.Fatalf("Read = %q, %v", buf[:n], err)
			}
		}},
		{"deadline", func(t *testing.T, r *rawIO, a, b *net.UnixConn) {
			a.SetReadDeadline(time.Now().Add(-time.Second)) // already past: no wait
			if _, err := r.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read past the deadline = %v, want os.ErrDeadlineExceeded", err)
			}
		}},
		{"eof", func(t *testing.T, r *rawIO, a, b *net.UnixConn) {
			b.Close()
			if n, err := r.Read(make([]byte, 4)); n != 0 || err != io.EOF { //nolint:errorlint // io.Reader's contract: io.EOF itself, not wrapped
				t.Fatalf("Read after the peer closed = %d, %v; want 0, io.EOF", n, err)
			}
		}},
		{"epipe", func(t *testing.T, r *rawIO, a, b *net.UnixConn) {
			b.Close()
			if _, err := r.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("Write to a closed peer = %v, want EPIPE", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := fdtest.UnixPair(t)
			r := newRawIO(a)
			if r == nil {
				t.Fatal("newRawIO of a Unix socket = nil")
			}
			tt.run(t, r, a, b)
		})
	}
}
