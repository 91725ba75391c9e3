package attr_test

import "os"

var (
	osErrDeadline       = os.ErrDeadlineExceeded
	errDeadline   error = timeoutError{}
)
