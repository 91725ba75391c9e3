// Command goscache-demo shows goscache caching a real TCP connection: it
// opens a connection to a local listener, saves it in a running goscache
// with the protocol client (as smtp(8) does after a delivery), closes its
// own copy, finds the connection back, and proves it is the same one by
// its addresses and by a line written through it. `make demo` runs it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "goscache-demo:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("goscache-demo", flag.ContinueOnError)
	sock := fs.String("socket", "", "goscache's socket")
	ctl := fs.String("scachectl", "", "if set, the scachectl binary to show the cache with at the end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sock == "" {
		return errors.New("-socket is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv, err := listenStandIn()
	if err != nil {
		return err
	}
	defer srv.ln.Close()
	fmt.Fprintf(out, "1. server stand-in listening on %s\n", srv.ln.Addr())

	conn, err := net.Dial("tcp", srv.ln.Addr().String())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "2. connected: local %s -> remote %s (server saw the client as %s)\n",
		conn.LocalAddr(), conn.RemoteAddr(), <-srv.accepted)

	c, err := dialCache(ctx, *sock)
	if err != nil {
		return err
	}
	defer c.Close()

	host, port, _ := net.SplitHostPort(srv.ln.Addr().String())
	d := demo{c: c, out: out, dest: "smtp\ndemo.test\n", endp: fmt.Sprintf("smtp\n%s\n%s\n0\n", host, port),
		destProp: "destination=demo.test\nhost_name=localhost\nhost_addr=" + host + "\n"}
	st, err := c.SaveDest(d.dest, d.destProp, d.endp, 2*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "3. save_dest %q -> %q: status=%d\n", d.dest, d.endp, st)
	if st, err = d.saveConn(conn, 2*time.Second, "tls_level=0\nreuse_count=0\n"); err != nil {
		return err
	}
	fmt.Fprintf(out, "4. save_endp with the connection's descriptor: status=%d\n", st)
	conn.Close()
	fmt.Fprintln(out, "5. closed the demo's own copy of the connection; goscache holds the only one")

	if err := d.findAndUse(ctx, srv.lines); err != nil {
		return err
	}
	close(srv.later)
	if *ctl == "" {
		return nil
	}
	return d.showWithScachectl(ctx, srv.ln.Addr().String(), *sock, *ctl)
}

// standIn is a stand-in for a remote SMTP server: the first connection's
// first line arrives on lines; later connections, accepted once later is
// closed, are held open, idle, like an SMTP server waiting for the next
// command, until the demo ends.
type standIn struct {
	ln       net.Listener
	accepted chan net.Addr
	lines    chan string
	later    chan struct{}
}

func listenStandIn() (*standIn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &standIn{ln: ln, accepted: make(chan net.Addr, 1), lines: make(chan string, 1), later: make(chan struct{})}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s.accepted <- c.RemoteAddr()
		line, _ := bufio.NewReader(c).ReadString('\n')
		s.lines <- line
	}()
	go func() {
		<-s.later
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	return s, nil
}

// dialCache connects to goscache, waiting for its socket to appear.
func dialCache(ctx context.Context, sock string) (*client.Client, error) {
	for {
		c, err := client.Dial(ctx, sock)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("goscache at %s: %w", sock, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// demo is the cache client and the labels the demo uses.
type demo struct {
	c                    *client.Client
	out                  io.Writer
	dest, endp, destProp string
}

// saveConn saves conn's descriptor under the demo's endpoint (save_endp).
func (d *demo) saveConn(conn net.Conn, ttl time.Duration, prop string) (status scache.Status, err error) {
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var serr error
	if cerr := raw.Control(func(fd uintptr) {
		status, serr = d.c.SaveEndp(d.endp, prop, int(fd), ttl)
	}); cerr != nil {
		return 0, cerr
	}
	return status, serr
}

// findAndUse finds the cached connection (find_dest), shows its addresses
// and writes a line through it, which the stand-in must receive on its
// original connection.
func (d *demo) findAndUse(ctx context.Context, lines <-chan string) error {
	out := d.out
	res, err := d.c.FindDest(d.dest)
	fd, destProp, endpProp, st := res.FD, res.DestProp, res.EndpProp, res.Status
	if err != nil {
		return err
	}
	if st != scache.StatusOK {
		return fmt.Errorf("find_dest: status=%d, want 0", st)
	}
	defer unix.Close(fd)
	fmt.Fprintf(out, "6. find_dest %q: status=%d, fd=%d\n   destination properties %q\n   endpoint properties    %q\n",
		d.dest, st, fd, destProp, endpProp)

	local, err := unix.Getsockname(fd)
	if err != nil {
		return err
	}
	peer, err := unix.Getpeername(fd)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "7. the descriptor's addresses: local %s -> remote %s\n", sockaddr(local), sockaddr(peer))

	msg := "hello through the cached connection\n"
	if _, err := unix.Write(fd, []byte(msg)); err != nil {
		return err
	}
	select {
	case got := <-lines:
		fmt.Fprintf(out, "8. the server stand-in received %q on its original connection\n", got)
		if got != msg {
			return fmt.Errorf("received %q, want %q", got, msg)
		}
	case <-ctx.Done():
		return errors.New("the line never arrived")
	}
	fmt.Fprintln(out, "=> same connection: it survived in goscache and came back")
	return nil
}

// showWithScachectl leaves one idle connection to addr in the cache and
// looks inside with scachectl, as an operator would.
func (d *demo) showWithScachectl(ctx context.Context, addr, sock, ctl string) error {
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn2.Close()
	if _, err := d.c.SaveDest(d.dest, d.destProp, d.endp, 60*time.Second); err != nil {
		return err
	}
	st, err := d.saveConn(conn2, 60*time.Second, "tls_level=0\nreuse_count=1\n")
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "9. cached a second connection (local %s) for 60s: status=%d\n", conn2.LocalAddr(), st)
	for _, sub := range []string{"dump", "stats"} {
		fmt.Fprintf(d.out, "\n== scachectl -socket %s %s\n", sock, sub)
		cmd := exec.CommandContext(ctx, ctl, "-socket", sock, sub)
		cmd.Stdout, cmd.Stderr = d.out, d.out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("scachectl %s: %w", sub, err)
		}
	}
	return nil
}

func sockaddr(sa unix.Sockaddr) string {
	if a, ok := sa.(*unix.SockaddrInet4); ok {
		return fmt.Sprintf("%d.%d.%d.%d:%d", a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3], a.Port)
	}
	return fmt.Sprintf("%v", sa)
}
