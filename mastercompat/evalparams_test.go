package mastercompat

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestConfig_EvalParams(t *testing.T) {
	const relOps = `"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: `
	tests := []struct {
		name     string
		mainCF   string
		names    []string
		want     string   // fatal text, "" for success
		param    string   // expandError.Name
		warnings []string // expandError.Warnings
	}{
		{name: "clean", mainCF: "a = $b\nb = x\n", names: []string{"a", "b", "unknown"}},
		{name: "none", mainCF: "a = ${{x} = {y}}\n", names: nil},
		{name: "unlisted", mainCF: "unrelated_param = ${{a} = {b}}\n", names: []string{"mydomain", "queue_directory"}},
		{
			name: "ttl limit", mainCF: "connection_cache_ttl_limit = ${{2s} == }\n",
			names: []string{"mydomain", "connection_cache_ttl_limit"},
			want:  macroErrorText, param: "connection_cache_ttl_limit",
			warnings: []string{`"{expression}" expected at: "...{2s} ==>>> "`},
		},
		{
			name: "first of two", mainCF: "b = ${{b} = {x}}\na = ${{a} = {x}}\n",
			names: []string{"a", "b"},
			want:  macroErrorText, param: "a",
			warnings: []string{relOps + `"...a}>>>= {x}"`},
		},
		{
			name: "through a reference", mainCF: "a = x $c\nc = ${{c} = {x}}\n",
			names: []string{"a", "c"},
			want:  macroErrorText, param: "a",
			warnings: []string{relOps + `"...c}>>>= {x}"`},
		},
		{
			name: "through a default", mainCF: "mydomain = ${{h} = {x}}\n", // myhostname = host.$mydomain
			names: []string{"myhostname"},
			want:  macroErrorText, param: "myhostname",
			warnings: []string{relOps + `"...h}>>>= {x}"`},
		},
		{
			name: "bad conversion", mainCF: "a = ${{99999999999999999999} == {1}}\n",
			names: []string{"a"},
			want:  "mac_exp_eval: bad conversion: 99999999999999999999", param: "a",
		},
		{
			name: "bad compatibility level", mainCF: "a = ${{x} <=level {1}}\n",
			names: []string{"a"},
			want:  macroErrorText, param: "a",
			warnings: []string{`malformed compatibility level syntax: "x"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConfig("/etc/postfix", "host")
			if err := c.Load(strings.NewReader(tt.mainCF)); err != nil {
				t.Fatal(err)
			}
			err := c.evalParams(tt.names)
			if len(c.warnings) != 0 {
				t.Errorf("c.Warnings = %q, want them in the error only", c.warnings)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("EvalParams = %v, want nil", err)
				}
				return
			}
			fe, ok := errors.AsType[*FatalError](err)
			if !ok {
				t.Fatalf("EvalParams = %v, want a *FatalError", err)
			}
			ee, ok := errors.AsType[*expandError](err)
			if !ok {
				t.Fatalf("EvalParams = %v, want it to wrap an *ExpandError", err)
			}
			if fe.Text != tt.want || ee.Name != tt.param {
				t.Errorf("fatal %q in %s, want %q in %s", fe.Text, ee.Name, tt.want, tt.param)
			}
			if diff := cmp.Diff(tt.warnings, ee.Warnings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMailVersion(t *testing.T) {
	if _, err := MailVersion(t.Context(), t.TempDir()); err == nil {
		t.Error("MailVersion found a postconf in an empty directory")
	}
	if _, err := os.Stat("/usr/sbin/postconf"); err != nil {
		t.Skipf("Postfix is not installed: %v", err)
	}
	v, err := MailVersion(t.Context(), "/usr/sbin")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+`).MatchString(v) {
		t.Errorf("MailVersion = %q, not a Postfix version", v)
	}
}
