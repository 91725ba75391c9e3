// Package errs holds the two error helpers that the cache and the server
// share: Join, which keeps collected errors on one log line, and Text,
// which shows an errno as Postfix's %m does.
package errs

import (
	"errors"
	"strings"
	"syscall"

	"github.com/hashicorp/go-multierror"
)

// Join collects errs, skipping nils, into one error (nil when none is
// left) whose text keeps them on one line, "first; second": a Close or
// Shutdown error ends up in a log record, and a newline would split the
// record. The errors stay reachable with errors.Is and errors.As.
// mastercompat has the same helper for its own collected errors; neither
// side may import the other.
func Join(errs ...error) error {
	return multierror.Append(&multierror.Error{ErrorFormat: oneLine}, errs...).ErrorOrNil()
}

// oneLine is a go-multierror ErrorFormat: the texts joined by "; ".
func oneLine(errs []error) string {
	texts := make([]string, len(errs))
	for i, err := range errs {
		texts[i] = err.Error()
	}
	return strings.Join(texts, "; ")
}

// Text returns the errno text of err when it has one, as Postfix's %m
// would show it (glibc's strerror: Go's text with a capital first letter),
// and err's text otherwise. mastercompat's errnoText is its counterpart
// for start-up errors.
func Text(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		t := errno.Error()
		if t != "" && t[0] >= 'a' && t[0] <= 'z' {
			t = string(t[0]-'a'+'A') + t[1:]
		}
		return t
	}
	return err.Error()
}
