package errs

import (
	"errors"
	"io"
	"os"
	"testing"
)

// TestJoinErrors checks that collected errors keep to one line (a log
// record must not be split), that nils are dropped and that every error
// stays reachable with errors.Is.
func TestJoinErrors(t *testing.T) {
	errA, errB := errors.New("close 3: bad file descriptor"), os.ErrClosed
	tests := []struct {
		name string
		errs []error
		want string // "" means a nil error
		is   []error
	}{
		{"none", nil, "", nil},
		{"only nils", []error{nil, nil}, "", nil},
		{"one", []error{errA}, errA.Error(), []error{errA}},
		{"two", []error{errA, nil, errB}, errA.Error() + "; " + errB.Error(), []error{errA, errB}},
		{"flattened", []error{Join(errA, errB), io.EOF}, errA.Error() + "; " + errB.Error() + "; EOF", []error{errA, errB, io.EOF}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Join(tt.errs...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Join = %q, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Join = %v, want %q", err, tt.want)
			}
			for _, e := range tt.is {
				if !errors.Is(err, e) {
					t.Errorf("errors.Is(%q, %q) = false", err, e)
				}
			}
		})
	}
}
