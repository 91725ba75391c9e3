package attr

import "errors"

// Errors returned by the decoder and scanner. Callers test them with
// errors.Is; a [ScanError] wraps one of them (or io.ErrUnexpectedEOF, or a
// deadline error from the underlying connection).
var (
	// ErrTooLong means a name or value exceeded Limits.MaxString.
	ErrTooLong = errors.New("attr: string too long")
	// ErrTooMany means a list exceeded Limits.MaxAttrs attributes or a table
	// exceeded Limits.MaxTable entries.
	ErrTooMany = errors.New("attr: too many attributes")
	// ErrMalformedInt means an INT or LONG value is not what Postfix's
	// sscanf("%u%c") accepts.
	ErrMalformedInt = errors.New("attr: malformed numerical data")
	// ErrMalformedBool means a BOOL value is not 0/1 (true/false in plain).
	ErrMalformedBool = errors.New("attr: malformed boolean value")
	// ErrMalformedData means a DATA value or a base64 token is not valid
	// base64.
	ErrMalformedData = errors.New("attr: malformed base64 data")
	// ErrMalformed means the framing itself is wrong: a missing or repeated
	// value separator (base64 and plain formats), a nested table, or an
	// unterminated table.
	ErrMalformed = errors.New("attr: malformed attribute list")
	// ErrUnexpectedValue means a STREQ item did not match.
	ErrUnexpectedValue = errors.New("attr: unexpected attribute value")
)

// ScanError is a hard scanner failure: the case where Postfix's attr_scan
// returns -1. Msg is the text Postfix logs for it (for example "premature
// end-of-input on scache socket while reading input attribute name"), so a
// server can log exactly what Postfix would. Err is the underlying cause.
type ScanError struct {
	Msg string
	Err error
}

// Error returns "attr: " followed by Msg.
func (e *ScanError) Error() string { return "attr: " + e.Msg }

// Unwrap returns the underlying cause.
func (e *ScanError) Unwrap() error { return e.Err }
