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

	// A stand-in for a remote SMTP server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	lines := make(chan string, 1)
	lines2 := make(chan struct{})
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		accepted <- c.RemoteAddr()
		line, _ := bufio.NewReader(c).ReadString('\n')
		lines <- line
	}()
	go func() {
		// Later connections are held open, idle, like an SMTP server
		// waiting for the next command, until the demo ends.
		<-lines2
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	fmt.Fprintf(out, "1. server stand-in listening on %s\n", ln.Addr())

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "2. connected: local %s -> remote %s (server saw the client as %s)\n",
		conn.LocalAddr(), conn.RemoteAddr(), <-accepted)

	// Wait for the daemon's socket.
	var c *scache.Client
	for {
		if c, err = scache.Dial(ctx, *sock); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("goscache at %s: %w", *sock, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer c.Close()

	host, port, _ := net.SplitHostPort(ln.Addr().String())
	dest := "smtp\ndemo.test\n"
	endp := fmt.Sprintf("smtp\n%s\n%s\n0\n", host, port)
	st, err := c.SaveDest(2, dest, "destination=demo.test\nhost_name=localhost\nhost_addr="+host+"\n", endp)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "3. save_dest %q -> %q: status=%d\n", dest, endp, st)

	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if cerr := raw.Control(func(fd uintptr) {
		st, serr = c.SaveEndp(2, endp, "tls_level=0\nreuse_count=0\n", int(fd))
	}); cerr != nil {
		return cerr
	}
	if serr != nil {
		return serr
	}
	fmt.Fprintf(out, "4. save_endp with the connection's descriptor: status=%d\n", st)
	conn.Close()
	fmt.Fprintln(out, "5. closed the demo's own copy of the connection; goscache holds the only one")

	fd, destProp, endpProp, st, err := c.FindDest(dest)
	if err != nil {
		return err
	}
	if st != scache.StatusOK {
		return fmt.Errorf("find_dest: status=%d, want 0", st)
	}
	defer unix.Close(fd)
	fmt.Fprintf(out, "6. find_dest %q: status=%d, fd=%d\n   destination properties %q\n   endpoint properties    %q\n",
		dest, st, fd, destProp, endpProp)

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
	close(lines2)

	if *ctl == "" {
		return nil
	}
	// Leave one idle connection in the cache and look inside with
	// scachectl, as an operator would.
	conn2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer conn2.Close()
	if _, err := c.SaveDest(60, dest, "destination=demo.test\nhost_name=localhost\nhost_addr="+host+"\n", endp); err != nil {
		return err
	}
	raw2, err := conn2.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	if cerr := raw2.Control(func(fd uintptr) {
		st, serr = c.SaveEndp(60, endp, "tls_level=0\nreuse_count=1\n", int(fd))
	}); cerr != nil {
		return cerr
	}
	if serr != nil {
		return serr
	}
	fmt.Fprintf(out, "9. cached a second connection (local %s) for 60s: status=%d\n", conn2.LocalAddr(), st)
	for _, sub := range []string{"dump", "stats"} {
		fmt.Fprintf(out, "\n== scachectl -socket %s %s\n", *sock, sub)
		cmd := exec.CommandContext(ctx, *ctl, "-socket", *sock, sub)
		cmd.Stdout, cmd.Stderr = out, out
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
