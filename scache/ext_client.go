package scache

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/goscache/goscache/attr"
)

// ServerStats asks the server for its lifetime statistics ([ReqStats]). It
// returns ErrNoExtensions when the server does not know the request.
func (c *Client) ServerStats() (*ServerStats, error) {
	l, err := c.Request(attr.List{attr.Str(AttrReq, ReqStats)})
	if err != nil {
		return nil, err
	}
	if err := extStatus(l); err != nil {
		return nil, err
	}
	r := extReader{l: l}
	s := &ServerStats{
		Time: r.time(AttrTime),
		Totals: Totals{
			Start:        r.time(AttrStart),
			DestHits:     r.long(AttrDestHits),
			DestMisses:   r.long(AttrDestMisses),
			EndpHits:     r.long(AttrEndpHits),
			EndpMisses:   r.long(AttrEndpMisses),
			PeakDests:    r.int(AttrPeakDests),
			PeakEndps:    r.int(AttrPeakEndps),
			PeakSessions: r.int(AttrPeakSessions),
		},
		Size: Size{Dests: r.int(AttrDests), Endps: r.int(AttrEndps), Sessions: r.int(AttrSessions)},
		Evictions: Evictions{
			Expired:         r.long(AttrEvictedExpired),
			Limit:           r.long(AttrEvictedLimit),
			Closed:          r.long(AttrEvictedClosed),
			ExpiredBindings: r.long(AttrExpiredBindings),
			Dead:            r.long(AttrEvictedDead),
		},
		Clients:    r.int(AttrClients),
		Refused:    r.optLong(AttrRefused),
		NonSockets: r.optLong(AttrNonSockets),
		Build: BuildInfo{
			Version:   r.optStr(AttrVersion),
			Revision:  r.optStr(AttrRevision),
			GoVersion: r.optStr(AttrGoVersion),
		},
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := s.readLatency(l); err != nil {
		return nil, err
	}
	return s, nil
}

// readLatency fills the latency histograms from a goscache_stats reply.
// They are optional: a goscache from before they were added sends none.
func (s *ServerStats) readLatency(l attr.List) error {
	v, ok := l.Get(AttrLatencyBounds)
	if !ok {
		return nil
	}
	bounds, err := parseBounds(v)
	if err != nil {
		return err
	}
	s.LatencyBounds = bounds
	for k, req := range RequestKinds {
		v, ok := l.Get(AttrLatencyPrefix + req)
		if !ok {
			continue
		}
		if s.Latency.Requests[k], err = parseHistogram(v, len(bounds)); err != nil {
			return fmt.Errorf("%s%s: %w", AttrLatencyPrefix, req, err)
		}
	}
	return nil
}

// Dump asks the server for its cache contents ([ReqDump]). It returns
// ErrNoExtensions when the server does not know the request.
// Destinations and endpoints come sorted by label, bindings and sessions
// oldest first.
func (c *Client) Dump() (*Dump, error) {
	l, err := c.Request(attr.List{attr.Str(AttrReq, ReqDump)})
	if err != nil {
		return nil, err
	}
	if err := extStatus(l); err != nil {
		return nil, err
	}
	r := extReader{l: l}
	d := &Dump{Time: r.time(AttrTime), Peers: map[int]string{}}
	nb, ns := r.int(AttrBindings), r.int(AttrSessions)
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
		label := r.str(AttrDestination)
		b := SnapshotBinding{
			EndpLabel: r.str(AttrEndpoint),
			DestProp:  r.str(AttrProp),
			Created:   r.time(AttrCreated),
			Expires:   r.time(AttrExpires),
		}
		if r.err != nil {
			return nil, r.err
		}
		if n := len(d.Snapshot.Dests); n == 0 || d.Snapshot.Dests[n-1].Label != label {
			d.Snapshot.Dests = append(d.Snapshot.Dests, SnapshotDest{Label: label})
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
		label := r.str(AttrEndpoint)
		s := SnapshotSession{
			FD:       r.int(AttrFD),
			EndpProp: r.str(AttrProp),
			Created:  r.time(AttrCreated),
			Expires:  r.time(AttrExpires),
		}
		peer := r.str(AttrPeer)
		if r.err != nil {
			return nil, r.err
		}
		if n := len(d.Snapshot.Endps); n == 0 || d.Snapshot.Endps[n-1].Label != label {
			d.Snapshot.Endps = append(d.Snapshot.Endps, SnapshotEndp{Label: label})
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
	if err == io.EOF {
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
	if len(l) == 0 || l[0].Name != AttrStatus {
		return fmt.Errorf("%w: reply does not start with a status", ErrProtocol)
	}
	st, err := parseStatus(l[0].Value)
	if err != nil {
		return err
	}
	switch {
	case st == StatusBad && len(l) == 1:
		return ErrNoExtensions
	case st != StatusOK:
		return fmt.Errorf("%w: status=%d", ErrProtocol, st)
	}
	if v, _ := l.Get(AttrServer); v != ServerName {
		return fmt.Errorf("%w: server %q, want %q", ErrProtocol, v, ServerName)
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
		r.err = fmt.Errorf("%w: reply lacks attribute %s", ErrProtocol, name)
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
		r.err = fmt.Errorf("%w: attribute %s=%q is not a number", ErrProtocol, name, v)
	}
	return n
}

// optStr is str for an attribute that older servers do not send: a missing
// one reads as "".
func (r *extReader) optStr(name string) string {
	v, _ := r.l.Get(name)
	return v
}

// optLong is long for an attribute that older servers do not send: a
// missing one reads as 0.
func (r *extReader) optLong(name string) int64 {
	if _, ok := r.l.Get(name); !ok {
		return 0
	}
	return r.long(name)
}

func (r *extReader) int(name string) int {
	n := r.long(name)
	if int64(int(n)) != n && r.err == nil {
		r.err = fmt.Errorf("%w: attribute %s=%d is out of range", ErrProtocol, name, n)
	}
	return int(n)
}

func (r *extReader) time(name string) time.Time {
	return time.Unix(0, r.long(name))
}
