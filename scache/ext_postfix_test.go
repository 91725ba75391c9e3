package scache_test

import (
	"errors"
	"testing"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/scachetest"
)

// TestExt_postfixAnswersStatusBad: against a server that answers the
// extension requests as Postfix's scache does, the Client's extension
// calls return ErrNoExtensions.
func TestExt_postfixAnswersStatusBad(t *testing.T) {
	c, err := scache.Dial(t.Context(), scachetest.NoExtensions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ServerStats(); !errors.Is(err, scache.ErrNoExtensions) {
		t.Errorf("ServerStats = %v, want ErrNoExtensions", err)
	}
	if _, err := c.Dump(); !errors.Is(err, scache.ErrNoExtensions) {
		t.Errorf("Dump = %v, want ErrNoExtensions", err)
	}
}
