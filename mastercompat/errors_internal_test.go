package mastercompat

import (
	"errors"
	"os"
	"testing"
)

// TestJoinErrors checks the properties Child.Close relies on: nils are
// dropped, nothing left gives nil, and the texts stay on one line (a log
// record must not be split) with every error reachable by errors.Is.
// scache's twin of joinErrors has the full table.
func TestJoinErrors(t *testing.T) {
	if err := joinErrors(nil, nil); err != nil {
		t.Errorf("joinErrors(nil, nil) = %q, want nil", err)
	}
	errA := errors.New("close 5: bad file descriptor")
	err := joinErrors(errA, nil, joinErrors(os.ErrClosed))
	if want := errA.Error() + "; " + os.ErrClosed.Error(); err == nil || err.Error() != want {
		t.Fatalf("joinErrors = %v, want %q", err, want)
	}
	if !errors.Is(err, errA) || !errors.Is(err, os.ErrClosed) {
		t.Errorf("errors.Is lost an error of %q", err)
	}
}
