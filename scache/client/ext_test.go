package client_test

import (
	"bufio"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/cache"
	"github.com/goscache/goscache/scache/client"
)

// TestServerStats_olderServer: a reply from a goscache that predates the
// optional attributes (refused_clients, non_sockets, the latency
// histograms, the build) still decodes, with those fields empty.
func TestServerStats_olderServer(t *testing.T) {
	base := attr.List{
		attr.Int(scache.AttrStatus, int(scache.StatusOK)), attr.Str(scache.AttrServer, scache.ServerName),
		attr.Long(scache.AttrTime, 2e18), attr.Long(scache.AttrStart, 1e18), attr.Int(scache.AttrClients, 3),
		attr.Long(scache.AttrDestHits, 4), attr.Long(scache.AttrDestMisses, 5), attr.Long(scache.AttrEndpHits, 6), attr.Long(scache.AttrEndpMisses, 7),
		attr.Int(scache.AttrDests, 1), attr.Int(scache.AttrEndps, 1), attr.Int(scache.AttrSessions, 2),
		attr.Int(scache.AttrPeakDests, 1), attr.Int(scache.AttrPeakEndps, 1), attr.Int(scache.AttrPeakSessions, 2),
		attr.Long(scache.AttrEvictedExpired, 8), attr.Long(scache.AttrEvictedLimit, 0), attr.Long(scache.AttrEvictedClosed, 0),
		attr.Long(scache.AttrExpiredBindings, 9), attr.Long(scache.AttrEvictedDead, 1),
	}
	wantBase := scache.ServerStats{
		Time: time.Unix(0, 2e18),
		Totals: scache.Totals{Start: time.Unix(0, 1e18), DestHits: 4, DestMisses: 5, EndpHits: 6, EndpMisses: 7,
			PeakDests: 1, PeakEndps: 1, PeakSessions: 2},
		Size:      cache.Size{Dests: 1, Endps: 1, Sessions: 2},
		Evictions: cache.Evictions{Expired: 8, ExpiredBindings: 9, Dead: 1},
		Clients:   3,
	}
	withBuild := wantBase
	withBuild.Build = scache.BuildInfo{Version: "0.1.0-1", Revision: "abc", GoVersion: "go1.26.0"}
	tests := []struct {
		name  string
		reply attr.List
		want  scache.ServerStats
	}{
		{"first release: no build, no histograms", base, wantBase},
		{"with the build", append(append(attr.List{}, base...),
			attr.Str(scache.AttrVersion, "0.1.0-1"), attr.Str(scache.AttrRevision, "abc"), attr.Str(scache.AttrGoVersion, "go1.26.0")), withBuild},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fakeServer(t, tt.reply)
			c, err := client.Dial(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := c.ServerStats()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tt.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("ServerStats (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeServer serves one client on a socket in t.TempDir(): it announces
// the protocol, reads one request and answers it with reply.
func fakeServer(t *testing.T, reply attr.List) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(attr.Append(nil, attr.List{attr.Str(scache.AttrProtocol, scache.ProtocolName)}))
		if _, err := attr.NewDecoder(bufio.NewReader(c), attr.Format0, attr.Limits{}).Decode(); err != nil {
			return
		}
		c.Write(attr.Append(nil, reply))
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return path
}
