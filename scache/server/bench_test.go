package server

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/cache"
	"github.com/goscache/goscache/scache/client"
	"golang.org/x/sys/unix"
)

// fakeFDBase is where the descriptor numbers of prefilled sessions start:
// far above any real descriptor (closing them at the end fails with
// EBADF, which the benchmark ignores).
const fakeFDBase = 1 << 24

// Realistic strings, as smtp(8) of Postfix 3.7 sends them (PROTOCOL.md §5.2,
// §5.3).
const (
	benchDestProp = "destination=example.com\nhost_name=mx1.example.com\nhost_addr=192.0.2.10\ndestination_features=4096\n\n"
	benchEndpProp = "tls_level=1\nreuse_count=1\nendpoint_features=0\nexpire_time=1764489600\n\n"
)

func benchDestLabel(i int) string { return fmt.Sprintf("smtp\nexample%d.com\n", i) }
func benchEndpLabel(i int) string {
	return fmt.Sprintf("smtp\n10.%d.%d.%d\n25\n1\n", i>>16&255, i>>8&255, i&255)
}

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
	c := cache.New(cache.Options{MaxSessions: -1})
	for i := range cached {
		c.SaveDest(benchDestLabel(i), benchDestProp, benchEndpLabel(i), time.Hour)
		c.SaveEndp(benchEndpLabel(i), benchEndpProp, fakeFDBase+i, time.Hour)
	}
	path := startServer(b, New(Options{Cache: c, StatusUpdateTime: -1}))
	b.Cleanup(func() { c.Close() }) // after the server's shutdown: cleanups run last first

	// Each client's own session: a socketpair end, the peer kept open so
	// that the connection is alive.
	type benchClient struct {
		cl         *client.Client
		dest, endp string
		peer       int
	}
	cls := make([]benchClient, clients)
	for i := range cls {
		cl := dialServer(b, path)
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		k := cached + i // labels not among the prefilled ones
		cls[i] = benchClient{cl, benchDestLabel(k), benchEndpLabel(k), sp[1]}
		if st, err := cl.SaveDest(cls[i].dest, benchDestProp, cls[i].endp, 3600*time.Second); err != nil || st != scache.StatusOK {
			b.Fatalf("save_dest: %d, %v", st, err)
		}
		if st, err := cl.SaveEndp(cls[i].endp, benchEndpProp, sp[0], 3600*time.Second); err != nil || st != scache.StatusOK {
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
				res, err := x.cl.FindDest(x.dest)
				fd, st := res.FD, res.Status
				if err != nil || st != scache.StatusOK {
					b.Errorf("find_dest: %d, %v", st, err)
					return
				}
				if st, err := x.cl.SaveDest(x.dest, benchDestProp, x.endp, 3600*time.Second); err != nil || st != scache.StatusOK {
					b.Errorf("save_dest: %d, %v", st, err)
					return
				}
				st, err = x.cl.SaveEndp(x.endp, benchEndpProp, fd, 3600*time.Second)
				unix.Close(fd)
				if err != nil || st != scache.StatusOK {
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

// BenchmarkDeadlines compares arming ipc_timeout before every read, as
// Postfix's timed stream does and goscache did until issue 18 (a runtime
// timer operation each time), with the lazy arming of conn.go's
// deadlines, which sets the deadline again only when it is over 1/64 of
// the timeout stale. One op is one read's worth of arming.
func BenchmarkDeadlines(b *testing.B) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(sp[1])
	f := os.NewFile(uintptr(sp[0]), "bench end")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	b.Run("every", func(b *testing.B) {
		for b.Loop() {
			nc.SetReadDeadline(time.Now().Add(DefaultIPCTimeout))
		}
	})
	b.Run("lazy", func(b *testing.B) {
		dl := deadlines{nc: nc}
		for b.Loop() {
			dl.armRead(DefaultIPCTimeout)
		}
	})
}
