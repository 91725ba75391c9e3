package mastercompat

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// FatalError is a startup failure that Postfix daemons report with
// msg_fatal(). Text holds Postfix's wording (without the "fatal: " prefix),
// which the caller logs at [LevelFatal] before exiting with status 1.
type FatalError struct {
	Text string // Postfix's message text, e.g. "bad generation: 9x"
	Err  error  // underlying error, if any
}

// Error returns the text prefixed with the package name.
func (e *FatalError) Error() string { return "mastercompat: " + e.Text }

// Unwrap returns the underlying error, if any.
func (e *FatalError) Unwrap() error { return e.Err }

func fatalf(format string, args ...any) *FatalError {
	return &FatalError{Text: fmt.Sprintf(format, args...)}
}

// errnoText returns the strerror-like text of err as Postfix's %m would
// print it ("No such file or directory"). scache's errText does the same
// for its log lines; there are two because neither package may import the
// other, and they differ on purpose: this one takes the innermost error of
// a wrapped chain (an *os.PathError's errno), errText looks for an errno
// and falls back to err's own text (a net.OpError without one).
func errnoText(err error) string {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		next := u.Unwrap()
		if next == nil {
			break
		}
		err = next
	}
	s := err.Error()
	if s == "" {
		return s
	}
	// Go's errno strings are lowercase; glibc's start with a capital.
	if s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// joinErrors collects errs, skipping nils, into one error (nil when none is
// left) whose text keeps them on one line, "first; second": such an error
// can end up in a log record, and a newline would split the record. The
// errors stay reachable with errors.Is and errors.As. scache has the same
// helper for its own collected errors; neither package may import the other.
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
