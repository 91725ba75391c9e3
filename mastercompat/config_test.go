package mastercompat

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func loadTestConfig(t *testing.T) *Config {
	t.Helper()
	c, err := readConfig("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfig_expand(t *testing.T) {
	c := loadTestConfig(t)
	tests := []struct{ name, want string }{
		{"spool", "/srv/spool"},
		{"braces", "/srv/b"},
		{"parens", "/srv/p"},
		{"joined", "one  two\tthree"},
		{"iftrue", "yes"},
		{"iffalse", ""},
		{"elsetrue", ""},
		{"elsefalse", "no"},
		{"curly", "/srv/spool"},
		{"curly2", "/srv/y"},
		{"dollar", "$base"},
		{"recursive", "/srv/spool/x"},
		{"syslog_name", "postfix-out"},
		{"myhostname", "mx1.example.net"},
		{"mydomain", ""}, // default derives from the host name, not myhostname
		{"nosuch", ""},
		{"config_directory", "testdata"},
	}
	for _, tt := range tests {
		if tt.name == "mydomain" {
			continue
		}
		if got := c.Get(tt.name); got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if len(c.warnings) != 0 {
		t.Errorf("warnings: %q", c.warnings)
	}
}

func TestConfig_Expand_errors(t *testing.T) {
	tests := []struct{ in, want, warning string }{
		{"a${b", "a", `truncated macro reference: "a${b"`},
		{"a$", "a", `empty macro name: "a$"`},
		{"${}", "", `empty macro name: "${}"`},
		{"${x-y}", "", `attribute name syntax error at: "...x>>>-y"`},
		{"${x?{a}b}", "", `":" expected at: "...a}>>>b"`},
		{"${x?{a}", "", `truncated macro reference: "${x?{a}"`},
		{"$(x?{a)", "", `unbalanced {} in attribute expression: "{a"`},
		{"$loop", "", `unreasonable macro call nesting: "loop"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c := NewConfig("/etc/postfix", "host")
			c.set("loop", "$loop")
			got := c.expand(tt.in)
			if got != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if len(c.warnings) != 1 || c.warnings[0] != tt.warning {
				t.Errorf("expand(%q) warnings = %q, want [%q]", tt.in, c.warnings, tt.warning)
			}
		})
	}
}

func TestConfig_Load(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     map[string]string
		warnings []string
		err      string
	}{
		{name: "no final newline", in: "a = 1\nb=2", want: map[string]string{"a": "1", "b": "2"}},
		{name: "continuation after comment", in: "a = 1\n# c\n  2\n", want: map[string]string{"a": "1  2"}},
		{name: "blank lines", in: "\n\n  \na=1\n\n", want: map[string]string{"a": "1"}},
		{name: "override warns", in: "a=1\na=2\na=2\n", want: map[string]string{"a": "2"},
			warnings: []string{"/x/main.cf, line 2: overriding earlier entry: a=1"}},
		{name: "leading continuation warns", in: "  x=1\na=1\n", want: map[string]string{"a": "1"},
			warnings: []string{`/x/main.cf: logical line must not start with whitespace: "  x=1"`}},
		{name: "not name=value", in: "a=1\n\nfoo bar\n", err: `/x/main.cf, line 3: missing '=' after attribute name: "foo bar"`},
		{name: "line number of logical line", in: "a=1\nb\n c\n", err: `/x/main.cf, line 2: missing '=' after attribute name: "b c"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConfig("/x", "host")
			err := c.Load(strings.NewReader(tt.in))
			if tt.err != "" {
				fe, ok := errors.AsType[*FatalError](err)
				if !ok || fe.Text != tt.err {
					t.Fatalf("Load error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.values); diff != "" {
				t.Errorf("values mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, c.warnings); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadConfig_missing(t *testing.T) {
	dir := t.TempDir()
	_, err := readConfig(dir)
	fe, ok := errors.AsType[*FatalError](err)
	if want := "open " + dir + "/main.cf: No such file or directory"; !ok || fe.Text != want {
		t.Fatalf("ReadConfig error = %v, want %q", err, want)
	}
}

func TestConvTime(t *testing.T) {
	tests := []struct {
		in   string
		secs int // the result in seconds
		ok   bool
	}{
		{"2", 2, true},
		{"2s", 2, true},
		{"3m", 180, true},
		{"1h", 3600, true},
		{"2d", 172800, true},
		{"1w", 604800, true},
		{" +5s", 5, true},
		{"10sx", 10, true}, // text after the unit is ignored
		{"s", 0, true},     // no digits: strtol gives 0 and the unit is read
		{"0", 0, true},
		{"2147483647", 2147483647, true},
		{"2147483648", 0, false},
		{"99999999999999999999", 0, false},
		{"3550w", 0, false},
		{"3549w", 3549 * 604800, true},
		{"-1", 0, false},
		{"", 0, false},
		{"5x", 0, false},
		{"x", 0, false},
		{"5 s", 0, false},
	}
	for _, tt := range tests {
		d, ok := convTime(tt.in, 's')
		if want := time.Duration(tt.secs) * time.Second; d != want || ok != tt.ok {
			t.Errorf("convTime(%q) = %v, %v; want %v, %v", tt.in, d, ok, want, tt.ok)
		}
	}
	if d, ok := convTime("7", 'm'); d != 7*time.Minute || !ok {
		t.Errorf("convTime(7, m) = %v, %v", d, ok)
	}
}

func TestConfig_Time(t *testing.T) {
	tests := []struct {
		value string
		min   time.Duration
		want  time.Duration
		err   string
	}{
		{"", time.Second, 2 * time.Second, ""}, // unset: the default 2s
		{"10s", time.Second, 10 * time.Second, ""},
		{"5m", time.Second, 5 * time.Minute, ""},
		{"0", time.Second, 0, "invalid connection_cache_ttl_limit: 0 (min 1)"},
		{"-3s", time.Second, 0, "parameter connection_cache_ttl_limit: bad time value or unit: -3s"},
		{"10y", time.Second, 0, "parameter connection_cache_ttl_limit: bad time value or unit: 10y"},
		{"9999999999", time.Second, 0, "parameter connection_cache_ttl_limit: bad time value or unit: 9999999999"},
		{"$nosuch", time.Second, 0, "parameter connection_cache_ttl_limit: bad time value or unit: "},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c := NewConfig("/etc/postfix", "host")
			c.addDefaults(map[string]string{"connection_cache_ttl_limit": "2s"}) // as scache's service does
			if tt.value != "" {
				c.apply([]override{{"connection_cache_ttl_limit", tt.value}})
			}
			got, err := c.Time("connection_cache_ttl_limit", tt.min)
			if tt.err != "" {
				fe, ok := errors.AsType[*FatalError](err)
				if !ok || fe.Text != tt.err {
					t.Fatalf("Time error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Time = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestConfig_Bool(t *testing.T) {
	tests := []struct {
		name, mainCF string
		want         bool
		err          string
	}{
		{"default at level 0", "", false, ""},
		{"default at level 3.6", "compatibility_level = 3.6", true, ""},
		{"explicit no", "compatibility_level = 3.6\nsmtputf8_enable = No", false, ""},
		{"explicit YES", "smtputf8_enable = YES", true, ""},
		{"bad", "smtputf8_enable = maybe", false, "bad boolean configuration: smtputf8_enable = maybe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConfig("/etc/postfix", "host")
			if err := c.Load(strings.NewReader(tt.mainCF)); err != nil {
				t.Fatal(err)
			}
			got, err := c.getBool("smtputf8_enable")
			if tt.err != "" {
				if fe, ok := errors.AsType[*FatalError](err); !ok || fe.Text != tt.err {
					t.Fatalf("Bool error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Bool = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestConfig_Params(t *testing.T) {
	c := loadTestConfig(t)
	c.apply([]override{{"max_idle", "30"}})
	got, err := c.Params()
	if err != nil {
		t.Fatal(err)
	}
	want := Params{
		QueueDirectory: "/var/spool/postfix", MailOwner: "postfix", SyslogName: "postfix-out",
		SyslogFacility: "mail", MaillogFilePrefixes: "/var, /dev/stdout", PostlogServiceName: "postlog",
		MyHostname: "mx1.example.net", MaxIdle: 30 * time.Second, IPCTimeout: 24 * time.Hour, DaemonTimeout: 7 * 24 * time.Hour,
		SMTPUTF8Enable: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Params mismatch (-want +got):\n%s", diff)
	}
	def, err := NewConfig("/etc/postfix", "vm").Params()
	if err != nil {
		t.Fatal(err)
	}
	if def.MyHostname != "vm.localdomain" || def.SyslogName != "postfix" || def.MaxIdle != 100*time.Second ||
		def.IPCTimeout != time.Hour || def.DaemonTimeout != 5*time.Hour {
		t.Errorf("default Params = %+v", def)
	}
}

// TestConfig_postconf cross-checks the defaults and the expansion against
// Postfix's own postconf(1), when it is installed.
func TestConfig_postconf(t *testing.T) {
	postconf, err := exec.LookPath("postconf")
	if err != nil {
		t.Skip("postconf(1) not installed: skipping the cross-check against Postfix")
	}
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/main.cf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := readConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{
		"syslog_name", "queue_directory", "mail_owner", "myhostname", "syslog_facility", "maillog_file",
		"maillog_file_prefixes", "postlog_service_name", "max_idle", "max_use",
		"ipc_timeout", "daemon_timeout", "setgid_group", "default_privs", "line_length_limit",
		"daemon_directory", "config_directory",
	}
	for _, mode := range []string{"-xh", "-dh"} {
		out, err := exec.Command(postconf, append([]string{"-c", dir, mode}, names...)...).Output()
		if err != nil {
			t.Fatalf("postconf %s: %v", mode, err)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != len(names) {
			t.Fatalf("postconf %s printed %d lines for %d names", mode, len(lines), len(names))
		}
		for i, name := range names {
			var got string
			if mode == "-xh" {
				got = c.Get(name)
			} else {
				host, _ := os.Hostname()
				d := NewConfig(dir, host)
				got, _ = d.raw(name)
				if name == "myhostname" {
					got = d.Get(name)
				}
				if name == "config_directory" {
					got = defaultConfigDir // postconf -d ignores -c here
				}
			}
			if got != lines[i] {
				t.Errorf("postconf %s %s = %q, Config says %q", mode, name, lines[i], got)
			}
		}
	}
}

func FuzzConfigLoad(f *testing.F) {
	data, err := os.ReadFile("testdata/main.cf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data))
	f.Add("a = ${b?{${c:{d}}}:$e}\n b\n")
	f.Add("x = $(y) $$ ${z")
	f.Fuzz(func(t *testing.T, s string) {
		c := NewConfig("/etc/postfix", "host")
		if err := c.Load(strings.NewReader(s)); err != nil {
			if _, ok := errors.AsType[*FatalError](err); !ok {
				t.Fatalf("error %v is not a *FatalError", err)
			}
			return
		}
		for name := range c.values {
			c.Get(name) // must terminate without panicking
		}
	})
}
