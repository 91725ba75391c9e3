package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// manName is how a command or flag name is written in the troff source:
// every hyphen escaped, as man --warnings wants it.
func manName(s string) string { return strings.ReplaceAll(s, "-", `\-`) }

// TestManPage: docs/man/scachectl.1 has a section for every command and
// names every flag of each, as the command's own usage text lists them.
func TestManPage(t *testing.T) {
	b, err := os.ReadFile("../../docs/man/scachectl.1")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	flagRE := regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)
	global := runCLI(t, "help").stdout
	for _, m := range flagRE.FindAllStringSubmatch(global, -1) {
		if !strings.Contains(page, `\fB\-`+manName(m[1])+`\fR`) {
			t.Errorf("global flag -%s is not in scachectl.1", m[1])
		}
	}
	for _, c := range commands() {
		if !strings.Contains(page, `.SS "`+manName(c.name)+` `) && !strings.Contains(page, ".SS "+c.name+"\n") {
			t.Errorf("command %s has no .SS section in scachectl.1", c.name)
		}
		usage := runCLI(t, "-socket", "/nonexistent", c.name, "-h").stderr // no postconf run
		flags := flagRE.FindAllStringSubmatch(usage, -1)
		if len(flags) == 0 {
			t.Errorf("%s -h lists no flags:\n%s", c.name, usage)
		}
		for _, m := range flags {
			if !strings.Contains(page, `\fB\-`+manName(m[1])+`\fR`) {
				t.Errorf("flag -%s of %s is not in scachectl.1", m[1], c.name)
			}
		}
	}
}
