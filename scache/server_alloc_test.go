package scache

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestServer_cycleAllocs locks in that the server's request path allocates
// nothing: a full smtp(8) cycle on labels the cache already knows (find_dest
// miss, find_endp miss, save_dest refreshing its binding, save_endp with a
// descriptor, find_dest hit handing it back) is served over a socketpair
// by a Server's connection goroutine while testing.AllocsPerRun counts the
// whole process's allocations. The client side uses raw system calls on
// buffers made beforehand, so every allocation counted is the server's.
func TestServer_cycleAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var idle atomic.Int64 // Busy(false) calls: one per request served
	srv := NewServer(nil, Options{StatusUpdateTime: -1, Busy: func(busy bool) {
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
	c := srv.newConn(nc)
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
		dest     = "smtp\nexample.com"
		endp     = "smtp\n192.0.2.1\n25"
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
	var (
		findDest     = record("request", ReqFindDest, "label", dest)
		findEndp     = record("request", ReqFindEndp, "label", endp)
		saveDest     = record("request", ReqSaveDest, "ttl", "60", "label", dest, "property", destProp, "label", endp)
		saveEndp     = record("request", ReqSaveEndp, "ttl", "60", "label", endp, "property", endpProp)
		dummy        = record("dummy", "")
		statusOK     = record("status", "0")
		destMiss     = record("status", "2", "property", "", "property", "")
		endpMiss     = record("status", "2", "property", "")
		destHit      = record("status", "0", "property", destProp, "property", endpProp)
		announcement = record("protocol", ProtocolName)
		buf          = make([]byte, 256)
		one          = []byte{0}
		rights       = unix.UnixRights(sess[0])
		oob          = make([]byte, unix.CmsgSpace(4*maxRecvFDs))
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
		request(findDest, destMiss)
		request(findEndp, endpMiss)
		request(saveDest, statusOK)
		request(saveEndp, dummy)
		if _, err := unix.SendmsgN(cfd, one, rights, nil, 0); err != nil {
			fail("sendmsg: %v", err)
		}
		expect(statusOK)
		request(findDest, destHit)
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
	for range 10 { // the binding exists, buffers have grown
		cycle()
	}
	if got := testing.AllocsPerRun(200, cycle); got != 0 {
		t.Errorf("%v allocations per cycle, want 0", got)
	}
}
