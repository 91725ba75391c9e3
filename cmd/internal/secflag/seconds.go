// Package secflag is the duration flag of the commands: a Go duration
// ("1m30s", "500ms") or, where Postfix counts in seconds, a bare number of
// seconds ("2" is 2s), so that a value copied from main.cf or from a
// Postfix manual page works as it is.
package secflag

import (
	"errors"
	"flag"
	"strconv"
	"time"
)

// duration is a flag.Value that holds a time.Duration.
type duration struct{ d *time.Duration }

// Var defines a duration flag on fs, with default value, stored in *p: a
// Go duration ("1m30s") or a bare, non-negative number of seconds ("90").
func Var(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(duration{p}, name, usage)
}

// parse reads a Go duration or a bare, non-negative number of seconds.
func parse(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration (such as 2s or 1m) or a number of seconds")
	}
	return d, nil
}

// Set parses s with parse.
func (v duration) Set(s string) error {
	d, err := parse(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

// String shows the duration as Go writes it.
func (v duration) String() string {
	if v.d == nil {
		return "0s"
	}
	return v.d.String()
}
