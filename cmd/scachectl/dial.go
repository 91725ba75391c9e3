package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
)

// connect dials e.socket and turns the usual failures into messages that
// say what to do.
func (e *env) connect() (cacheConn, error) {
	ctx, cancel := context.WithTimeout(e.ctx, e.timeout)
	defer cancel()
	return e.connectCtx(ctx)
}

// connectCtx is connect within ctx's deadline.
func (e *env) connectCtx(ctx context.Context) (cacheConn, error) {
	c, err := e.dial(ctx, e.socket, e.timeout)
	if err != nil {
		return nil, socketError(e.socket, err)
	}
	return c, nil
}

// socketError explains a failure to connect to path.
func socketError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("no cache socket at %s: is goscache (or Postfix's scache) running? choose another socket with -socket PATH: %w", path, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("permission denied on %s: the cache socket is normally only reachable by root or the postfix user (run scachectl as one of them): %w", path, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing is listening on %s (a stale socket of a stopped cache?): %w", path, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%s closed the connection without announcing itself: goscache does that to users it does not admit (only root, its own user, mail_owner and -allow-group members): %w", path, err)
	case errors.Is(err, syscall.ENOTSOCK):
		return fmt.Errorf("%s is not a socket: %w", path, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%s accepted the connection but no cache daemon answered in time: master(8) accepts on the socket and starts the daemon on demand, and after failed starts it throttles the service (the mail log, journalctl -u postfix or /var/log/mail.log, then shows \"warning: process .../goscache pid N exit status 1\" and \"bad command startup -- throttling\"); fix the cause (postfix check, master.cf's command), then postfix reload: %w", path, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from %s within the -timeout: %w", path, err)
	}
	return fmt.Errorf("connect to %s: %w", path, err)
}

// dialScache connects to a cache speaking connection_cache_protocol. The
// server's announcement (Postfix 3.6 and later, goscache by default) or its
// absence (Postfix 3.5) is seen with the first reply, so the errors of the
// first request are explained as connecting errors are.
func dialScache(ctx context.Context, path string, timeout time.Duration) (cacheConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	uc := nc.(*net.UnixConn)
	c, err := client.New(uc)
	if err != nil {
		uc.Close()
		return nil, err
	}
	c.Timeout = timeout
	return &scacheConn{Client: c, uc: uc, path: path}, nil
}

// scacheConn adapts a *client.Client to what the commands use.
type scacheConn struct {
	*client.Client
	uc   *net.UnixConn // the Client's connection, for Open
	path string
}

// Open reports whether the peer still holds the connection open and has
// sent nothing unasked: a peek that would block.
func (c *scacheConn) Open() bool {
	rc, err := c.uc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		open = rerr == unix.EAGAIN
		return true
	})
	return err == nil && open
}

// explain turns a failure to read the server's first output into the
// message connect would give.
func (c *scacheConn) explain(err error) error {
	switch {
	case !errors.Is(err, client.ErrAnnouncement):
		return err
	case errors.Is(err, attr.ErrUnexpectedValue):
		return fmt.Errorf("the server at %s does not speak connection_cache_protocol: %w", c.path, err)
	}
	return socketError(c.path, err)
}

// FindDest is Client.FindDest with its errors explained.
func (c *scacheConn) FindDest(label string) (client.Result, error) {
	res, err := c.Client.FindDest(label)
	return res, c.explain(err)
}

// FindEndp is Client.FindEndp with its errors explained.
func (c *scacheConn) FindEndp(label string) (client.Result, error) {
	res, err := c.Client.FindEndp(label)
	return res, c.explain(err)
}

// SaveDest is Client.SaveDest with its errors explained.
func (c *scacheConn) SaveDest(destLabel, destProp, endpLabel string, ttl time.Duration) (scache.Status, error) {
	status, err := c.Client.SaveDest(destLabel, destProp, endpLabel, ttl)
	return status, c.explain(err)
}

// SaveEndp is Client.SaveEndp with its errors explained.
func (c *scacheConn) SaveEndp(label, prop string, fd int, ttl time.Duration) (scache.Status, error) {
	status, err := c.Client.SaveEndp(label, prop, fd, ttl)
	return status, c.explain(err)
}

func (c *scacheConn) Stats() (*statsView, error) {
	s, err := c.ServerStats()
	if err != nil {
		return nil, c.explain(err)
	}
	t := s.Totals
	var lat *latencyView
	if s.LatencyBounds != nil {
		lat = &latencyView{Bounds: s.LatencyBounds}
		kinds := scache.RequestKinds()
		for k, h := range s.Latency.Requests {
			if h.Buckets != nil {
				lat.Requests = append(lat.Requests, requestLatency{Request: kinds[k], Count: h.Count, Sum: h.Sum, Buckets: h.Buckets})
			}
		}
	}
	return &statsView{
		Latency:        lat,
		RefusedClients: s.Refused,
		NonSockets:     s.NonSockets,
		Server:         scache.ServerName,
		Build:          buildView{Version: s.Build.Version, Revision: s.Build.Revision, GoVersion: s.Build.GoVersion},
		Time:           s.Time,
		Start:          t.Start,
		UptimeSeconds:  seconds(s.Time.Sub(t.Start)),
		// The daemon counts the asking connection; ours is not a client.
		Clients: max(s.Clients-1, 0),
		Lookups: lookupsView{
			Domain:  lookupView{Hits: t.DestHits, Misses: t.DestMisses},
			Address: lookupView{Hits: t.EndpHits, Misses: t.EndpMisses},
		},
		Cached:    sizeView{Domains: s.Size.Dests, Addresses: s.Size.Endps, Connections: s.Size.Sessions},
		Peak:      sizeView{Domains: t.PeakDests, Addresses: t.PeakEndps, Connections: t.PeakSessions},
		Evictions: evictionsView{Expired: s.Evictions.Expired, Limit: s.Evictions.Limit, Closed: s.Evictions.Closed, ExpiredBindings: s.Evictions.ExpiredBindings, Dead: s.Evictions.Dead},
	}, nil
}

func (c *scacheConn) Dump() (*dumpView, error) {
	d, err := c.Client.Dump()
	if err != nil {
		return nil, c.explain(err)
	}
	v := &dumpView{Server: scache.ServerName, Time: d.Time, Destinations: []destView{}, Endpoints: []endpView{}}
	for _, sd := range d.Snapshot.Dests {
		dv := destView{Label: sd.Label, Bindings: []bindingView{}}
		for _, b := range sd.Bindings {
			dv.Bindings = append(dv.Bindings, bindingView{Endpoint: b.EndpLabel, Property: b.DestProp, Created: b.Created, Expires: b.Expires})
		}
		v.Destinations = append(v.Destinations, dv)
	}
	for _, se := range d.Snapshot.Endps {
		ev := endpView{Label: se.Label, Connections: []connView{}}
		for _, s := range se.Sessions {
			ev.Connections = append(ev.Connections, connView{FD: s.FD, Peer: d.Peers[s.FD], Property: s.EndpProp, Created: s.Created, Expires: s.Expires})
		}
		v.Endpoints = append(v.Endpoints, ev)
	}
	v.fill()
	return v, nil
}
