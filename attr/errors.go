package attr

// Errors returned by the decoder and scanner. Callers test them with
// errors.Is; a [ScanError] wraps one of them (or io.ErrUnexpectedEOF, or a
// deadline error from the underlying connection). They are constants, so
// that no importer can change them.
const (
	// ErrTooLong means a name or value exceeded Limits.MaxString.
	ErrTooLong sentinelError = "attr: string too long"
	// ErrTooMany means a list exceeded Limits.MaxAttrs attributes or a table
	// exceeded Limits.MaxTable entries.
	ErrTooMany sentinelError = "attr: too many attributes"
	// ErrMalformedInt means an INT or LONG value is not what Postfix's
	// sscanf("%u%c") accepts.
	ErrMalformedInt sentinelError = "attr: malformed numerical data"
	// ErrMalformedBool means a BOOL value is not 0/1 (true/false in plain).
	ErrMalformedBool sentinelError = "attr: malformed boolean value"
	// ErrMalformedData means a DATA value or a base64 token is not valid
	// base64.
	ErrMalformedData sentinelError = "attr: malformed base64 data"
	// ErrMalformed means the framing itself is wrong: a missing or repeated
	// value separator (base64 and plain formats), a nested table, or an
	// unterminated table.
	ErrMalformed sentinelError = "attr: malformed attribute list"
	// ErrUnexpectedValue means a STREQ item did not match.
	ErrUnexpectedValue sentinelError = "attr: unexpected attribute value"
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

// sentinelError is the type of the package's error constants.
type sentinelError string

// Error returns the error's text.
func (e sentinelError) Error() string { return string(e) }
