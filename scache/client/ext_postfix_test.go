package client_test

import (
	"errors"
	"testing"

	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/scachetest"
)

// TestExt_postfixAnswersStatusBad: against a server that answers the
// extension requests as Postfix's scache does, the Client's extension
// calls return ErrNoExtensions.
func TestExt_postfixAnswersStatusBad(t *testing.T) {
	c, err := client.Dial(t.Context(), scachetest.NoExtensions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ServerStats(); !errors.Is(err, client.ErrNoExtensions) {
		t.Errorf("ServerStats = %v, want ErrNoExtensions", err)
	}
	if _, err := c.Dump(); !errors.Is(err, client.ErrNoExtensions) {
		t.Errorf("Dump = %v, want ErrNoExtensions", err)
	}
}
