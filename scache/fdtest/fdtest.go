// Package fdtest holds the descriptor helpers that the tests of scache and
// of the commands share: pipes and TCP peers to cache, socketpairs to pass
// descriptors over, identity and leak checks. Every descriptor it creates is
// closed by t.Cleanup. It is for tests only.
package fdtest

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// UnixPair returns the two ends of a connected AF_UNIX stream socketpair
// as *net.UnixConn, closed when the test ends.
func UnixPair(t testing.TB) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]*net.UnixConn
	for i, fd := range p {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
		t.Cleanup(func() { c.Close() })
	}
	return conns[0], conns[1]
}

// PipeFD returns the read end of a fresh pipe; both ends are closed when
// the test ends.
func PipeFD(t testing.TB) int {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0]
}

// Identity returns the device and inode of fd's file: equal identities mean
// the same open file, whatever the descriptor numbers.
func Identity(t testing.TB, fd int) [2]uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return [2]uint64{st.Dev, st.Ino}
}

// SameFile reports whether descriptors a and b refer to the same file.
func SameFile(t testing.TB, a, b int) bool {
	t.Helper()
	return Identity(t, a) == Identity(t, b)
}

// OpenFDs counts this process's open descriptors (/proc/self/fd).
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TCPPeer is a listener on 127.0.0.1 standing for a remote SMTP server: it
// accepts connections and keeps them open, idle, until the test ends.
type TCPPeer struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

// NewTCPPeer starts a TCPPeer, stopped when the test ends.
func NewTCPPeer(t testing.TB) *TCPPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &TCPPeer{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

// Addr returns the peer's "127.0.0.1:port".
func (p *TCPPeer) Addr() string { return p.l.Addr().String() }

// Port returns the peer's port as text.
func (p *TCPPeer) Port() string {
	_, port, _ := net.SplitHostPort(p.Addr())
	return port
}

// Conns returns the connections accepted so far, oldest first. They stay
// owned by the peer (closed when the test ends).
func (p *TCPPeer) Conns() []net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]net.Conn(nil), p.conns...)
}

// Dial returns a blocking descriptor connected to the peer, as smtp(8)
// holds one, closed when the test ends.
func (p *TCPPeer) Dial(t testing.TB) int {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.(*net.TCPConn).File() // a blocking duplicate
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// ServeUnix listens on a fresh Unix socket under t.TempDir() and runs
// serve in a goroutine for every connection accepted, closing the
// connection when serve returns. It returns the socket's path; the listener
// is closed when the test ends. Tests use it for fake peers: a server that
// rejects every request, one that speaks another protocol.
func ServeUnix(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return path
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers,
// for capturing a logger's output while the code under test runs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
