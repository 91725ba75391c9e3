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
// parameters the multi-server skeleton and the service read
// (global/mail_conf.c, util/dict.c dict_load_fp). Values are expanded with
// $name, ${name}, $(name), ${name?value}, ${name:value}, ${name?{value}},
// ${name:{value}}, ${name?{value1}:{value2}} and relational expressions
// such as ${{value3} <= {value4} ? {value1} : {value2}} like
// util/mac_expand.c (see [Config.Get]). A Config is not safe for
// concurrent use.
type Config struct {
	// Dir is the configuration directory.
	Dir string

	path string // Dir/main.cf
	// warnings holds Postfix's non-fatal complaints met while reading and
	// expanding (e.g. "overriding earlier entry"), for the caller to log
	// at warning level once logging is up.
	warnings []string

	values   map[string]string
	defaults map[string]string
}

// builtinDefaults returns the built-in defaults (as `postconf -d` prints
// them for Debian's Postfix 3.7.11) of every parameter the multi-server
// skeleton reads; a service adds its own with addDefaults.
// myhostname, mydomain and config_directory depend on the host and are
// filled in by [NewConfig].
func builtinDefaults() map[string]string {
	return map[string]string{
		"max_idle":              "100s",
		"max_use":               "100",
		"ipc_timeout":           "3600s",
		"daemon_timeout":        "18000s",
		"queue_directory":       "/var/spool/postfix",
		"mail_owner":            "postfix",
		"setgid_group":          "postdrop",
		"default_privs":         "nobody",
		"syslog_name":           "${multi_instance_name?{$multi_instance_name}:{postfix}}",
		"multi_instance_name":   "",
		"syslog_facility":       "mail",
		"maillog_file":          "",
		"maillog_file_prefixes": "/var, /dev/stdout",
		"postlog_service_name":  "postlog",
		"line_length_limit":     "2048",
		"daemon_directory":      "/usr/lib/postfix/sbin",
		"command_directory":     "/usr/sbin",
		"data_directory":        "/var/lib/postfix",
		"meta_directory":        "/etc/postfix",
		"compatibility_level":   "0",
		"smtputf8_enable":       "${{$compatibility_level} <level {1} ? {no} : {yes}}",
	}
}

// NewConfig returns a Config for directory dir with no main.cf settings:
// every lookup yields the built-in default. hostname stands in for
// gethostname(2) when deriving the myhostname and mydomain defaults.
func NewConfig(dir, hostname string) *Config {
	c := &Config{
		Dir:      dir,
		path:     filepath.Join(dir, "main.cf"),
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

// addDefaults adds a service's own parameter defaults (as `postconf -d`
// prints them) to the skeleton's; a name already known gets the new default.
func (c *Config) addDefaults(defaults map[string]string) {
	for name, v := range defaults {
		c.defaults[name] = v
	}
}

// readConfig reads dir/main.cf as mail_conf_suck does. A file that cannot
// be opened is fatal: "open PATH: ERRNO".
func readConfig(dir string) (*Config, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	c := NewConfig(dir, host)
	f, err := os.Open(c.path)
	if err != nil {
		return nil, &FatalError{Text: fmt.Sprintf("open %s: %s", c.path, errnoText(err)), Err: err}
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
		name, value, why := splitNameValue(text)
		if why != "" {
			return fatalf("%s, line %d: %s: \"%s\"", c.path, first, why, text)
		}
		if old, ok := c.values[name]; ok && old != value {
			c.warnings = append(c.warnings, fmt.Sprintf("%s, line %d: overriding earlier entry: %s=%s", c.path, first, name, old))
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
					c.warnings = append(c.warnings, fmt.Sprintf("%s: logical line must not start with whitespace: \"%.30s%s\"",
						c.path, line, ellipsis(len(line) > 30)))
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
			return &FatalError{Text: fmt.Sprintf("read %s: %s", c.path, errnoText(err)), Err: err}
		}
	}
}

func ellipsis(b bool) string {
	if b {
		return "..."
	}
	return ""
}

// set overrides a parameter, as -o name=value does (mail_conf_update).
func (c *Config) set(name, value string) { c.values[name] = value }

// apply sets every override in order.
func (c *Config) apply(overrides []override) {
	for _, o := range overrides {
		c.set(o.Name, o.Value)
	}
}

// raw returns a parameter's unexpanded value: the override or main.cf
// setting, else the built-in default. ok is false for a parameter that is
// neither set nor known.
func (c *Config) raw(name string) (value string, ok bool) {
	if v, ok := c.values[name]; ok {
		return v, true
	}
	v, ok := c.defaults[name]
	return v, ok
}

// Get returns a parameter's expanded value ("" when unknown).
func (c *Config) Get(name string) string {
	v, ok := c.raw(name)
	if !ok {
		return ""
	}
	return c.expand(v)
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
	// SMTPUTF8Enable is smtputf8_enable, which Postfix copies into
	// util_utf8_enable: log text then keeps UTF-8 (without it, every byte
	// outside printable ASCII is logged as '?').
	SMTPUTF8Enable bool
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
		if *t.dst, err = c.Time(t.name, time.Second); err != nil {
			return Params{}, err
		}
	}
	if p.SMTPUTF8Enable, err = c.getBool("smtputf8_enable"); err != nil {
		return Params{}, err
	}
	return p, nil
}

// getBool reads a boolean parameter as get_mail_conf_bool does: "yes" or
// "no" in any case; anything else is fatal ("bad boolean configuration:
// NAME = VALUE").
func (c *Config) getBool(name string) (bool, error) {
	v := c.Get(name)
	switch {
	case strings.EqualFold(v, "yes"):
		return true, nil
	case strings.EqualFold(v, "no"):
		return false, nil
	}
	return false, fatalf("bad boolean configuration: %s = %s", name, v)
}
