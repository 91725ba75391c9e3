package mastercompat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is main.cf as a Postfix daemon sees it: the file's name = value
// pairs, then the command-line overrides, over built-in defaults for the
// parameters the multi-server skeleton and scache read
// (global/mail_conf.c, util/dict.c dict_load_fp). Values are expanded with
// $name, ${name}, $(name), ${name?value}, ${name:value}, ${name?{value}} and
// ${name:{value}} like util/mac_expand.c. A Config is not safe for
// concurrent use.
type Config struct {
	// Dir is the configuration directory, Path is Dir/main.cf.
	Dir, Path string
	// Warnings holds Postfix's non-fatal complaints met while reading and
	// expanding (e.g. "overriding earlier entry"), for the caller to log
	// at warning level once logging is up.
	Warnings []string

	values   map[string]string
	defaults map[string]string
}

// builtinDefaults returns the built-in defaults (as `postconf -d` prints
// them for Debian's Postfix 3.7.11) of every parameter this package and
// scache read. myhostname, mydomain and config_directory depend on the host
// and are filled in by [NewConfig].
func builtinDefaults() map[string]string {
	return map[string]string{
		"connection_cache_ttl_limit":          "2s",
		"connection_cache_status_update_time": "600s",
		"connection_cache_protocol_timeout":   "5s",
		"connection_cache_service_name":       "scache",
		"max_idle":                            "100s",
		"max_use":                             "100",
		"ipc_timeout":                         "3600s",
		"daemon_timeout":                      "18000s",
		"queue_directory":                     "/var/spool/postfix",
		"mail_owner":                          "postfix",
		"setgid_group":                        "postdrop",
		"default_privs":                       "nobody",
		"syslog_name":                         "${multi_instance_name?{$multi_instance_name}:{postfix}}",
		"multi_instance_name":                 "",
		"syslog_facility":                     "mail",
		"maillog_file":                        "",
		"maillog_file_prefixes":               "/var, /dev/stdout",
		"postlog_service_name":                "postlog",
		"line_length_limit":                   "2048",
		"daemon_directory":                    "/usr/lib/postfix/sbin",
		"command_directory":                   "/usr/sbin",
		"data_directory":                      "/var/lib/postfix",
		"meta_directory":                      "/etc/postfix",
	}
}

// NewConfig returns a Config for directory dir with no main.cf settings:
// every lookup yields the built-in default. hostname stands in for
// gethostname(2) when deriving the myhostname and mydomain defaults.
func NewConfig(dir, hostname string) *Config {
	c := &Config{
		Dir:      dir,
		Path:     filepath.Join(dir, "main.cf"),
		values:   make(map[string]string),
		defaults: builtinDefaults(),
	}
	c.defaults["config_directory"] = dir
	if i := strings.IndexByte(hostname, '.'); i >= 0 {
		c.defaults["myhostname"] = hostname
		c.defaults["mydomain"] = hostname[i+1:]
	} else {
		c.defaults["myhostname"] = hostname + ".$mydomain"
		c.defaults["mydomain"] = "localdomain"
	}
	return c
}

// ReadConfig reads dir/main.cf as mail_conf_suck does. A file that cannot
// be opened is fatal: "open PATH: ERRNO".
func ReadConfig(dir string) (*Config, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	c := NewConfig(dir, host)
	f, err := os.Open(c.Path)
	if err != nil {
		return nil, &FatalError{Text: fmt.Sprintf("open %s: %s", c.Path, errnoText(err)), Err: err}
	}
	defer f.Close()
	if err := c.Load(f); err != nil {
		return nil, err
	}
	return c, nil
}

// Load adds the name = value lines of a main.cf read from r. Logical lines
// continue on lines that start with white space; lines whose first non-blank
// character is '#' and blank lines are skipped (util/readlline.c). A line
// that is not name = value is fatal: `PATH, line N: WHY: "LINE"`.
func (c *Config) Load(r io.Reader) error {
	br := bufio.NewReader(r)
	var (
		logical []byte // the logical line being built
		first   int    // its first physical line number
		lineno  int
	)
	flush := func() error {
		if len(logical) == 0 {
			return nil
		}
		text := string(logical)
		logical = logical[:0]
		name, value, why := SplitNameValue(text)
		if why != "" {
			return fatalf("%s, line %d: %s: \"%s\"", c.Path, first, why, text)
		}
		if old, ok := c.values[name]; ok && old != value {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s, line %d: overriding earlier entry: %s=%s", c.Path, first, name, old))
		}
		c.values[name] = value
		return nil
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			lineno++
			line = bytes.TrimSuffix(line, []byte("\n"))
			trimmed := bytes.TrimLeft(line, spaceChars)
			switch {
			case len(trimmed) == 0 || trimmed[0] == '#':
				// comment or blank: neither starts nor ends a logical line
			case len(trimmed) < len(line): // continuation
				if len(logical) == 0 {
					c.Warnings = append(c.Warnings, fmt.Sprintf("%s: logical line must not start with whitespace: \"%.30s%s\"",
						c.Path, line, ellipsis(len(line) > 30)))
					break
				}
				logical = append(logical, line...)
			default:
				if err := flush(); err != nil {
					return err
				}
				first = lineno
				logical = append(logical, line...)
			}
		}
		if errors.Is(err, io.EOF) {
			return flush()
		}
		if err != nil {
			return &FatalError{Text: fmt.Sprintf("read %s: %s", c.Path, errnoText(err)), Err: err}
		}
	}
}

func ellipsis(b bool) string {
	if b {
		return "..."
	}
	return ""
}

// Set overrides a parameter, as -o name=value does (mail_conf_update).
func (c *Config) Set(name, value string) { c.values[name] = value }

// Apply sets every override in order.
func (c *Config) Apply(overrides []Override) {
	for _, o := range overrides {
		c.Set(o.Name, o.Value)
	}
}

// Raw returns a parameter's unexpanded value: the override or main.cf
// setting, else the built-in default. ok is false for a parameter that is
// neither set nor known.
func (c *Config) Raw(name string) (value string, ok bool) {
	if v, ok := c.values[name]; ok {
		return v, true
	}
	v, ok := c.defaults[name]
	return v, ok
}

// Get returns a parameter's expanded value ("" when unknown).
func (c *Config) Get(name string) string {
	v, ok := c.Raw(name)
	if !ok {
		return ""
	}
	return c.Expand(v)
}

// Expand expands $name references in s recursively, as mail_conf_eval
// does. Unknown names expand to nothing. Syntax errors are recorded in
// Warnings with util/mac_expand.c's texts and end the expansion early.
func (c *Config) Expand(s string) string {
	var b strings.Builder
	if err := c.expand(&b, s, 0); err != nil {
		c.Warnings = append(c.Warnings, err.Error())
	}
	return b.String()
}

// maxNesting is mac_expand's limit on macro call nesting.
const maxNesting = 100

type expandError string

func (e expandError) Error() string { return string(e) }

func (c *Config) expand(b *strings.Builder, s string, level int) error {
	for i := 0; i < len(s); {
		ch := s[i]
		if ch != '$' {
			b.WriteByte(ch)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i += 2
			continue
		}
		i++
		var expr string
		if i < len(s) && (s[i] == '{' || s[i] == '(') {
			open, close := s[i], byte('}')
			if open == '(' {
				close = ')'
			}
			depth, j := 1, i+1
			for ; ; j++ {
				if j >= len(s) {
					return expandError(fmt.Sprintf("truncated macro reference: \"%s\"", s))
				}
				if s[j] == open {
					depth++
				} else if s[j] == close {
					if depth--; depth == 0 {
						break
					}
				}
			}
			expr, i = s[i+1:j], j+1
		} else {
			j := i
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			expr, i = s[i:j], j
		}
		if expr == "" {
			return expandError(fmt.Sprintf("empty macro name: \"%s\"", s))
		}
		if err := c.expandExpr(b, expr, level+1); err != nil {
			return err
		}
	}
	return nil
}

func isNameChar(ch byte) bool {
	return ch == '_' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z'
}

// expandExpr handles the inside of one $name, ${...} or $(...) reference.
func (c *Config) expandExpr(b *strings.Builder, expr string, level int) error {
	if level > maxNesting {
		return expandError(fmt.Sprintf("unreasonable macro call nesting: \"%s\"", expr))
	}
	cp := strings.TrimLeft(expr, " \t\r\n")
	if strings.HasPrefix(cp, "{") {
		return expandError(fmt.Sprintf("relational expressions are not supported: \"%s\"", expr))
	}
	j := 0
	for j < len(cp) && isNameChar(cp[j]) {
		j++
	}
	name, rest := cp[:j], strings.TrimLeft(cp[j:], " \t\r\n")
	var op byte
	if rest != "" {
		op = rest[0]
		if op != '?' && op != ':' {
			return expandError(fmt.Sprintf("attribute name syntax error at: \"...%s>>>%.20s\"", name, cp[j:]))
		}
		rest = rest[1:]
	}
	value, defined := c.Raw(name)
	nonEmpty := defined && value != ""
	switch op {
	case 0:
		if nonEmpty {
			return c.expand(b, value, level)
		}
		return nil
	case '?':
		payload, after, err := curlyOperand(rest)
		if err != nil {
			return err
		}
		if nonEmpty {
			if err := c.expand(b, payload, level); err != nil {
				return err
			}
		}
		if after == "" {
			return nil
		}
		if after[0] != ':' {
			return expandError(fmt.Sprintf("\":\" expected at: \"...%s}>>>%.20s\"", payload, after))
		}
		rest = after[1:]
	}
	payload, after, err := curlyOperand(rest)
	if err != nil {
		return err
	}
	if !nonEmpty {
		if err := c.expand(b, payload, level); err != nil {
			return err
		}
	}
	if after != "" {
		return expandError(fmt.Sprintf("unexpected input at: \"...%s}>>>%.20s\"", payload, after))
	}
	return nil
}

// curlyOperand splits the operand after ? or :. A {...} operand ends at its
// balanced closing brace (white space after it is skipped); any other
// operand is the rest of the expression.
func curlyOperand(s string) (payload, after string, err error) {
	t := strings.TrimLeft(s, " \t\r\n")
	if !strings.HasPrefix(t, "{") {
		return s, "", nil
	}
	depth := 1
	for i := 1; i < len(t); i++ {
		switch t[i] {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return t[1:i], strings.TrimLeft(t[i+1:], " \t\r\n"), nil
			}
		}
	}
	return "", "", expandError(fmt.Sprintf("unbalanced {} in attribute expression: \"%s\"", t))
}

// Time returns a time parameter as get_mail_conf_time does: an integer with
// an optional unit letter s, m, h, d or w; without a letter the unit of the
// parameter's default applies (seconds for every parameter here). Errors are
// fatal with Postfix's texts: "parameter NAME: bad time value or unit: V"
// and "invalid NAME: N (min MIN)". min is in seconds; 0 means no minimum.
func (c *Config) Time(name string, min int) (time.Duration, error) {
	defUnit := byte('s')
	if d, ok := c.defaults[name]; ok {
		d = c.Expand(d)
		for i := 0; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				defUnit = d[i]
				break
			}
		}
	}
	v := c.Get(name)
	secs, ok := ConvTime(v, defUnit)
	if !ok {
		return 0, fatalf("parameter %s: bad time value or unit: %s", name, v)
	}
	if min != 0 && secs < min {
		return 0, fatalf("invalid %s: %d (min %d)", name, secs, min)
	}
	return time.Duration(secs) * time.Second, nil
}

// ConvTime converts a Postfix time value to seconds as global/conv_time.c
// does: strtol rules for the number (leading white space and a sign are
// accepted), then the unit letter (s, m, h, d, w; defUnit when absent);
// anything after the letter is ignored. ok is false for a negative value, a
// value that overflows a C int, or an unknown unit.
func ConvTime(s string, defUnit byte) (secs int, ok bool) {
	n, end, ok := strtol(s)
	if !ok || n < 0 {
		return 0, false
	}
	unit := defUnit
	if end < len(s) {
		unit = s[end]
	}
	const maxInt = 1<<31 - 1
	var mult int64
	switch unit {
	case 's':
		return int(n), true
	case 'm':
		mult = 60
	case 'h':
		mult = 3600
	case 'd':
		mult = 86400
	case 'w':
		mult = 7 * 86400
	default:
		return 0, false
	}
	if n >= maxInt/mult {
		return 0, false
	}
	return int(n * mult), true
}

// strtol parses like strtol(s, &end, 10) followed by Postfix's checks that
// s is not empty and the value fits a C int. end is the index after the
// number, or 0 when there is none.
func strtol(s string) (n int64, end int, ok bool) {
	if s == "" {
		return 0, 0, false
	}
	i := 0
	for i < len(s) && strings.IndexByte(spaceChars, s[i]) >= 0 {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	overflow := false
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if n > (1<<31)*10 { // far beyond int; remember and keep scanning
			overflow = true
		} else {
			n = n*10 + int64(s[i]-'0')
		}
		i++
	}
	if i == start {
		return 0, 0, true // no digits: value 0, end at the start of s
	}
	if neg {
		n = -n
	}
	if overflow || n > 1<<31-1 || n < -1<<31 {
		return 0, i, false
	}
	return n, i, true
}

// Params are the parameters the multi-server skeleton itself reads
// (global/mail_params.c, master/multi_server.c), after expansion.
type Params struct {
	QueueDirectory      string        // queue_directory: chdir and chroot target
	MailOwner           string        // mail_owner: the user for -u
	SyslogName          string        // syslog_name: first part of the log tag
	SyslogFacility      string        // syslog_facility
	MaillogFile         string        // maillog_file: non-empty selects postlog logging
	MaillogFilePrefixes string        // maillog_file_prefixes
	PostlogServiceName  string        // postlog_service_name
	MyHostname          string        // myhostname: host field of postlog records
	MaxIdle             time.Duration // max_idle (min 1s)
	IPCTimeout          time.Duration // ipc_timeout (min 1s)
	DaemonTimeout       time.Duration // daemon_timeout (min 1s)
}

// Params reads the skeleton's parameters. Errors are [*FatalError]s.
func (c *Config) Params() (Params, error) {
	p := Params{
		QueueDirectory:      c.Get("queue_directory"),
		MailOwner:           c.Get("mail_owner"),
		SyslogName:          c.Get("syslog_name"),
		SyslogFacility:      c.Get("syslog_facility"),
		MaillogFile:         c.Get("maillog_file"),
		MaillogFilePrefixes: c.Get("maillog_file_prefixes"),
		PostlogServiceName:  c.Get("postlog_service_name"),
		MyHostname:          c.Get("myhostname"),
	}
	var err error
	for _, t := range []struct {
		name string
		dst  *time.Duration
	}{
		{"daemon_timeout", &p.DaemonTimeout},
		{"ipc_timeout", &p.IPCTimeout},
		{"max_idle", &p.MaxIdle},
	} {
		if *t.dst, err = c.Time(t.name, 1); err != nil {
			return Params{}, err
		}
	}
	return p, nil
}
