package server

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/internal/fdpass"
	"golang.org/x/sys/unix"
)

// TestServer_cycleAllocs locks in what the server's request path
// allocates for a full smtp(8) cycle (find_dest miss, find_endp miss,
// save_dest, save_endp with a descriptor, find_dest hit handing it back),
// served over a socketpair by a Server's connection goroutine while the
// whole process's allocations are counted. The client side uses raw system
// calls on buffers made beforehand, so every allocation counted is the
// server's. With labels the cache already knows (save_dest refreshes its
// binding) the cycle allocates nothing. With fresh labels every cycle
// leaves a new binding behind (and its endpoint's list head), and the
// cache allocates what it stores: the test reports the count and bytes
// per cycle (go test -v) and bounds them, so that docs/architecture.md's
// figures stay true.
func TestServer_cycleAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	tests := []struct {
		name            string
		fresh           bool
		maxAllocs, maxB float64
	}{
		// The bytes come from the process's total, which also counts what
		// the runtime and other goroutines allocate meanwhile (a few bytes
		// a cycle at times): only the fresh-label row bounds them.
		{"reused labels", false, 0, -1},
		{"fresh labels", true, 6, 320},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allocs, bytes := cycleAllocs(t, tt.fresh)
			t.Logf("%s: %.2f allocations, %.0f bytes per cycle", tt.name, allocs, bytes)
			if allocs > tt.maxAllocs || (tt.maxB >= 0 && bytes > tt.maxB) {
				t.Errorf("%.2f allocations, %.0f B per cycle; want at most %v and %v B", allocs, bytes, tt.maxAllocs, tt.maxB)
			}
		})
	}
}

// cycleAllocs serves smtp(8)'s cycle as TestServer_cycleAllocs describes
// and returns the allocations and bytes allocated per cycle, on labels
// saved before (fresh false) or new in every cycle.
func cycleAllocs(t *testing.T, fresh bool) (allocs, bytesPerCycle float64) {
	var idle atomic.Int64 // Busy(false) calls: one per request served
	srv := New(Options{StatusUpdateTime: -1, Busy: func(busy bool) {
		if !busy {
			idle.Add(1)
		}
	}})
	t.Cleanup(func() { srv.Close() })

	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfd := sp[0] // the client's end: blocking, raw system calls
	t.Cleanup(func() { unix.Close(cfd) })
	f := os.NewFile(uintptr(sp[1]), "server end")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := srv.newConn(nc)
	if err != nil {
		t.Fatal(err)
	}
	if !srv.trackConn(c, true) {
		t.Fatal("server closed")
	}
	go c.serve()

	// The session the client caches and gets back, again and again.
	sess, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sess[0]); unix.Close(sess[1]) })
	var want unix.Stat_t
	if err := unix.Fstat(sess[0], &want); err != nil {
		t.Fatal(err)
	}

	const (
		destProp = "destination=example.com"
		endpProp = "tls_level=0\nreuse_count=0\n"
	)
	record := func(kv ...string) []byte {
		var b []byte
		for _, s := range kv {
			b = append(append(b, s...), 0)
		}
		return append(b, 0)
	}
	// The requests of each cycle's labels, made beforehand: one set, or
	// with fresh labels one per cycle run (warm-up, AllocsPerRun's own
	// warm-up run and its runs, then the bytes' runs).
	const warmup, runs = 10, 200
	type labelSet struct{ findDest, findEndp, saveDest, saveEndp []byte }
	sets := make([]labelSet, 1)
	if fresh {
		sets = make([]labelSet, warmup+1+2*runs)
	}
	for i := range sets {
		dest, endp := "smtp\nexample.com", "smtp\n192.0.2.1\n25"
		if fresh { // as long as smtp(8)'s: a host name, an address and port
			dest = "smtp\nmx" + strconv.Itoa(100000+i) + ".example.com"
			endp = "smtp\n192.0.2.1\n" + strconv.Itoa(100000+i)
		}
		sets[i] = labelSet{
			findDest: record("request", scache.ReqFindDest, "label", dest),
			findEndp: record("request", scache.ReqFindEndp, "label", endp),
			saveDest: record("request", scache.ReqSaveDest, "ttl", "60", "label", dest, "property", destProp, "label", endp),
			saveEndp: record("request", scache.ReqSaveEndp, "ttl", "60", "label", endp, "property", endpProp),
		}
	}
	next := 0
	var (
		dummy        = record("dummy", "")
		statusOK     = record("status", "0")
		destMiss     = record("status", "2", "property", "", "property", "")
		endpMiss     = record("status", "2", "property", "")
		destHit      = record("status", "0", "property", destProp, "property", endpProp)
		announcement = record("protocol", scache.ProtocolName)
		buf          = make([]byte, 256)
		one          = []byte{0}
		rights       = unix.UnixRights(sess[0])
		oob          = make([]byte, unix.CmsgSpace(4*fdpass.MaxRecvFDs))
		served       int64
	)
	// recvmsg(2) by hand: unix.Recvmsg allocates a socket address.
	var iov unix.Iovec
	iov.Base = &buf[0]
	iov.SetLen(1)
	var msg unix.Msghdr
	msg.Iov = &iov
	msg.SetIovlen(1)
	msg.Control = &oob[0]
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format, args...)
	}
	send := func(b []byte) {
		if _, err := unix.Write(cfd, b); err != nil {
			fail("write: %v", err)
		}
	}
	expect := func(want []byte) {
		got := buf[:len(want)]
		for n := 0; n < len(want); {
			m, err := unix.Read(cfd, got[n:])
			if err != nil || m == 0 {
				fail("read: %d, %v", m, err)
			}
			n += m
		}
		if !bytes.Equal(got, want) {
			fail("reply %q, want %q", got, want)
		}
	}
	request := func(req, reply []byte) {
		send(req)
		expect(reply)
	}
	// cycle runs smtp(8)'s cycle and waits until the server has finished
	// the last request (it goes idle after the trailing dummy).
	cycle := func() {
		ls := &sets[next%len(sets)]
		next++
		request(ls.findDest, destMiss)
		request(ls.findEndp, endpMiss)
		request(ls.saveDest, statusOK)
		request(ls.saveEndp, dummy)
		if _, err := unix.SendmsgN(cfd, one, rights, nil, 0); err != nil {
			fail("sendmsg: %v", err)
		}
		expect(statusOK)
		request(ls.findDest, destHit)
		send(dummy)
		msg.SetControllen(len(oob))
		if _, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(cfd), uintptr(unsafe.Pointer(&msg)), 0); errno != 0 {
			fail("recvmsg: %v", errno)
		}
		_, data, _, err := unix.ParseOneSocketControlMessage(oob[:msg.Controllen])
		if err != nil || len(data) < 4 {
			fail("control message: %v", err)
		}
		fd := int(int32(binary.NativeEndian.Uint32(data)))
		var got unix.Stat_t
		unix.Fstat(fd, &got)
		unix.Close(fd)
		if got.Ino != want.Ino || got.Dev != want.Dev {
			fail("find_dest handed back another descriptor")
		}
		send(dummy)
		served += 5
		for idle.Load() < served {
			runtime.Gosched()
		}
	}

	expect(announcement)
	for range warmup { // reused labels: the binding exists; buffers have grown
		cycle()
	}
	allocs = testing.AllocsPerRun(runs, cycle)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range runs {
		cycle()
	}
	runtime.ReadMemStats(&m1)
	return allocs, float64(m1.TotalAlloc-m0.TotalAlloc) / runs
}
