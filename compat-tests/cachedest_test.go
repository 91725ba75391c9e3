//go:build compat

package compattest

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/goscache/goscache/compat-tests/pfx"
	"github.com/goscache/goscache/compat-tests/sink"
)

// TestCacheDestinationForms settles, with the real smtp(8) and scache of
// this Postfix, which form of a next hop smtp_connection_cache_destinations
// must name when a transport map routes a domain to "[127.0.0.77]:port":
// the bare host "127.0.0.77" turns caching on; the transport's own
// spelling "[127.0.0.77]:port" does not (docs/operator.md, "Checking it
// works"). Caching on demand is off, so the list alone decides.
func TestCacheDestinationForms(t *testing.T) {
	requirePostfix(t)
	ctx := t.Context()
	const host, domain, messages = "127.0.0.77", "forms.test", 6
	port := *flagPort
	nexthop := fmt.Sprintf("[%s]:%d", host, port)
	sk, err := sink.Start(sink.Config{
		Addrs:  []string{fmt.Sprintf("%s:%d", host, port)},
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sk.Close() })
	root := t.TempDir()
	in, err := pfx.Create(ctx, pfx.Options{
		Root:       filepath.Join(root, "pfx"),
		DaemonDir:  *flagDaemonDir,
		CommandDir: *flagCommandDir,
		Transports: map[string]string{domain: "smtp:" + nexthop},
		Main: map[string]string{
			"smtp_connection_cache_on_demand":       "no",
			"default_destination_concurrency_limit": "1",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	tests := []struct {
		setting string
		cached  bool
	}{
		{nexthop, false},
		{host, true},
	}
	for i, tt := range tests {
		if out, err := in.Postconf(ctx, "-e", "smtp_connection_cache_destinations = "+tt.setting); err != nil {
			t.Fatalf("postconf: %v: %s", err, out)
		}
		if err := in.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		sk.Reset()
		off := in.LogSize()
		for j := range messages {
			id := fmt.Sprintf("forms.%d.%d.%d@compat.test", i, j, os.Getpid())
			if err := in.Send(ctx, "sender@compat.test", fmt.Sprintf("rcpt%d@%s", j, domain), "forms", id); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := waitDelivered(in, sk, messages); err != nil {
			t.Fatal(err)
		}
		lines, err := in.LogSince(off)
		if err != nil {
			t.Fatal(err)
		}
		c := sk.Total()
		reused := countReused(lines)
		t.Logf("smtp_connection_cache_destinations = %s: %d messages over %d connections, %d deliveries with conn_use >= 2", tt.setting, c.Messages, c.Conns, reused)
		if got := reused > 0 && c.Conns < c.Messages; got != tt.cached {
			t.Errorf("smtp_connection_cache_destinations = %s with the next hop %s: cached %v, want %v (%d messages over %d connections, %d reused)",
				tt.setting, nexthop, got, tt.cached, c.Messages, c.Conns, reused)
		}
	}
}
