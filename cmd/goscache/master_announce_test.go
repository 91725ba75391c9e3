package main

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
)

// TestMaster_announcement: under master(8), goscache announces its protocol
// where the installed Postfix's scache does (3.6 and later, or a release it
// cannot read) and not under Postfix 3.5, whose smtp(8) would take the
// announcement for the reply to its first request. The first bytes read
// after a find_dest are compared whole; the scache Client works either way.
func TestMaster_announcement(t *testing.T) {
	const announcement = "protocol\x00connection_cache_protocol\x00\x00"
	const miss = "status\x002\x00property\x00\x00property\x00\x00\x00"
	for _, tc := range []struct {
		mailVersion string
		want        string
	}{
		{"3.5.25", miss},
		{"3.6-20200906", miss},
		{"3.6.20", announcement + miss},
		{"3.7.11", announcement + miss},
		{"3.11.7", announcement + miss},
		{"", announcement + miss}, // postconf failed: a current release
	} {
		t.Run(tc.mailVersion, func(t *testing.T) {
			c := startMasterChild(t, "goscache -l -n scache -t unix", "", envMailVersion+"="+tc.mailVersion)
			nc, err := net.Dial("unix", c.sock)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := nc.Write([]byte("request\x00find_dest\x00label\x00nowhere\x00\x00")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(tc.want))
			if _, err := io.ReadFull(nc, got); err != nil || string(got) != tc.want {
				t.Fatalf("read %q (%v), want %q; stderr:\n%s", got, err, tc.want, &c.stderr)
			}
			cl, err := client.Dial(t.Context(), c.sock)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if res, err := cl.FindDest("nowhere"); err != nil || res.Status != scache.StatusFail {
				t.Fatalf("Client FindDest = %d, %v", res.Status, err)
			}
			if want := len(tc.want) > len(miss); cl.Announced() != want {
				t.Errorf("Client.Announced() = %v, want %v", cl.Announced(), want)
			}
		})
	}
}
