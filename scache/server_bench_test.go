package scache

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeFDBase is where the descriptor numbers of prefilled sessions start:
// far above any real descriptor, so the close hook can tell them apart.
const fakeFDBase = 1 << 24

// BenchmarkServer_cycle measures smtp(8)'s save+find cycle through the
// whole server, over a Unix socket with real descriptor passing: find_dest
// (hit: reply, dummy, descriptor, dummy), save_dest (a refresh) and
// save_endp (dummy, descriptor, status), then the client closes its copy of
// the descriptor, as smtp(8) does. One op is one such cycle of one client;
// with 16 clients the ops run concurrently, so ns/op is wall time divided
// by all the clients' cycles. B/op and allocs/op count the whole process:
// clients and server.
//
// The cache is prefilled with cached sessions, each with its own
// destination binding, that the clients do not touch (fake descriptor
// numbers: 100000 real ones would need an RLIMIT_NOFILE this machine does
// not allow); each client cycles its own session.
func BenchmarkServer_cycle(b *testing.B) {
	for _, clients := range []int{1, 16} {
		for _, cached := range []int{10, 1000, 100000} {
			b.Run(fmt.Sprintf("clients=%d/cached=%d", clients, cached), func(b *testing.B) {
				benchServerCycle(b, clients, cached)
			})
		}
	}
}

func benchServerCycle(b *testing.B, clients, cached int) {
	c := NewCache(CacheOptions{})
	c.closeFD = func(fd int) error {
		if fd >= fakeFDBase {
			return nil
		}
		return unix.Close(fd)
	}
	for i := range cached {
		c.SaveDest(benchDestLabel(i), benchDestProp, benchEndpLabel(i), time.Hour)
		c.SaveEndp(benchEndpLabel(i), benchEndpProp, fakeFDBase+i, time.Hour)
	}
	path := startServer(b, NewServer(c, Options{StatusUpdateTime: -1}))
	b.Cleanup(func() { c.Close() }) // after the server's shutdown: cleanups run last first

	// Each client's own session: a socketpair end, the peer kept open so
	// that the connection is alive.
	type client struct {
		cl         *Client
		dest, endp string
		peer       int
	}
	cls := make([]client, clients)
	for i := range cls {
		cl := dialServer(b, path)
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		k := cached + i // labels not among the prefilled ones
		cls[i] = client{cl, benchDestLabel(k), benchEndpLabel(k), sp[1]}
		if st, err := cl.SaveDest(3600*time.Second, cls[i].dest, benchDestProp, cls[i].endp); err != nil || st != StatusOK {
			b.Fatalf("save_dest: %d, %v", st, err)
		}
		if st, err := cl.SaveEndp(3600*time.Second, cls[i].endp, benchEndpProp, sp[0]); err != nil || st != StatusOK {
			b.Fatalf("save_endp: %d, %v", st, err)
		}
		unix.Close(sp[0])
		b.Cleanup(func() { unix.Close(sp[1]) })
	}

	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, x := range cls {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				fd, _, _, st, err := x.cl.FindDest(x.dest)
				if err != nil || st != StatusOK {
					b.Errorf("find_dest: %d, %v", st, err)
					return
				}
				if st, err := x.cl.SaveDest(3600*time.Second, x.dest, benchDestProp, x.endp); err != nil || st != StatusOK {
					b.Errorf("save_dest: %d, %v", st, err)
					return
				}
				st, err = x.cl.SaveEndp(3600*time.Second, x.endp, benchEndpProp, fd)
				unix.Close(fd)
				if err != nil || st != StatusOK {
					b.Errorf("save_endp: %d, %v", st, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if got, want := c.Size().Sessions, cached+clients; got != want {
		b.Errorf("cached sessions after the run: %d, want %d", got, want)
	}
}
