package scache

import (
	"strings"

	"github.com/hashicorp/go-multierror"
)

// joinErrors collects errs, skipping nils, into one error (nil when none is
// left) whose text keeps them on one line, "first; second": a Close or
// Shutdown error ends up in a log record, and a newline would split the
// record. The errors stay reachable with errors.Is and errors.As.
// mastercompat has the same helper for its own collected errors; neither
// package may import the other.
func joinErrors(errs ...error) error {
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
