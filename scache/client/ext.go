package client

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/cache"
)

// ErrNoExtensions means the server answered an extension request with
// status 1, as Postfix's scache does for every request it does not know.
const ErrNoExtensions clientError = "scache: extension request not recognized (the server is not goscache)"

// ServerStats asks the server for its lifetime statistics
// ([scache.ReqStats]). It returns ErrNoExtensions when the server does not
// know the request.
func (c *Client) ServerStats() (*scache.ServerStats, error) {
	l, err := c.Request(attr.List{attr.Str(scache.AttrReq, scache.ReqStats)})
	if err != nil {
		return nil, err
	}
	if err := extStatus(l); err != nil {
		return nil, err
	}
	s := new(scache.ServerStats)
	if err := s.UnmarshalAttrs(l); err != nil {
		return nil, err
	}
	return s, nil
}

// Dump asks the server for its cache contents ([scache.ReqDump]). It
// returns ErrNoExtensions when the server does not know the request.
// Destinations and endpoints come sorted by label, bindings and sessions
// oldest first.
func (c *Client) Dump() (*scache.Dump, error) {
	l, err := c.Request(attr.List{attr.Str(scache.AttrReq, scache.ReqDump)})
	if err != nil {
		return nil, err
	}
	if err := extStatus(l); err != nil {
		return nil, err
	}
	r := extReader{l: l}
	d := &scache.Dump{Time: r.time(scache.AttrTime), Peers: map[int]string{}}
	nb, ns := r.int(scache.AttrBindings), r.int(scache.AttrSessions)
	if r.err != nil {
		return nil, r.err
	}
	// The counts come from the peer: records are read one at a time and
	// nothing is allocated ahead from them.
	for i := 0; i < nb; i++ {
		l, err := c.readRecord()
		if err != nil {
			return nil, err
		}
		r := extReader{l: l}
		label := r.str(scache.AttrDestination)
		b := cache.SnapshotBinding{
			EndpLabel: r.str(scache.AttrEndpoint),
			DestProp:  r.str(scache.AttrProp),
			Created:   r.time(scache.AttrCreated),
			Expires:   r.time(scache.AttrExpires),
		}
		if r.err != nil {
			return nil, r.err
		}
		if n := len(d.Snapshot.Dests); n == 0 || d.Snapshot.Dests[n-1].Label != label {
			d.Snapshot.Dests = append(d.Snapshot.Dests, cache.SnapshotDest{Label: label})
		}
		last := &d.Snapshot.Dests[len(d.Snapshot.Dests)-1]
		last.Bindings = append(last.Bindings, b)
	}
	for i := 0; i < ns; i++ {
		l, err := c.readRecord()
		if err != nil {
			return nil, err
		}
		r := extReader{l: l}
		label := r.str(scache.AttrEndpoint)
		s := cache.SnapshotSession{
			FD:       r.int(scache.AttrFD),
			EndpProp: r.str(scache.AttrProp),
			Created:  r.time(scache.AttrCreated),
			Expires:  r.time(scache.AttrExpires),
		}
		peer := r.str(scache.AttrPeer)
		if r.err != nil {
			return nil, r.err
		}
		if n := len(d.Snapshot.Endps); n == 0 || d.Snapshot.Endps[n-1].Label != label {
			d.Snapshot.Endps = append(d.Snapshot.Endps, cache.SnapshotEndp{Label: label})
		}
		last := &d.Snapshot.Endps[len(d.Snapshot.Endps)-1]
		last.Sessions = append(last.Sessions, s)
		d.Peers[s.FD] = peer
	}
	return d, nil
}

// readRecord reads one more record of a multi-record reply.
func (c *Client) readRecord() (attr.List, error) {
	c.deadline()
	l, err := c.dec.Decode()
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("scache: read reply: %w", err)
	}
	return l, nil
}

// extStatus checks the status that starts an extension reply. A lone
// status=1 is Postfix's answer to a request it does not know.
func extStatus(l attr.List) error {
	if len(l) == 0 || l[0].Name != scache.AttrStatus {
		return fmt.Errorf("%w: reply does not start with a status", scache.ErrProtocol)
	}
	st, err := parseStatus(l[0].Value)
	if err != nil {
		return err
	}
	switch {
	case st == scache.StatusBad && len(l) == 1:
		return ErrNoExtensions
	case st != scache.StatusOK:
		return fmt.Errorf("%w: status=%d", scache.ErrProtocol, st)
	}
	if v, _ := l.Get(scache.AttrServer); v != scache.ServerName {
		return fmt.Errorf("%w: server %q, want %q", scache.ErrProtocol, v, scache.ServerName)
	}
	return nil
}

// extReader takes typed attributes out of a reply by name and keeps the
// first error.
type extReader struct {
	l   attr.List
	err error
}

func (r *extReader) str(name string) string {
	v, ok := r.l.Get(name)
	if !ok && r.err == nil {
		r.err = fmt.Errorf("%w: reply lacks attribute %s", scache.ErrProtocol, name)
	}
	return v
}

func (r *extReader) long(name string) int64 {
	v := r.str(name)
	if r.err != nil {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.err = fmt.Errorf("%w: attribute %s=%q is not a number", scache.ErrProtocol, name, v)
	}
	return n
}

func (r *extReader) int(name string) int {
	n := r.long(name)
	if int64(int(n)) != n && r.err == nil {
		r.err = fmt.Errorf("%w: attribute %s=%d is out of range", scache.ErrProtocol, name, n)
	}
	return int(n)
}

func (r *extReader) time(name string) time.Time {
	return time.Unix(0, r.long(name))
}
