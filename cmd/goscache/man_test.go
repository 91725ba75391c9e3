package main

import (
	"errors"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestManPage: docs/man/goscache.8 names every standalone flag, as the
// usage text lists them.
func TestManPage(t *testing.T) {
	b, err := os.ReadFile("../../docs/man/goscache.8")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	var usage strings.Builder
	if _, err := parseStandalone([]string{"goscache", "-h"}, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("goscache -h: %v", err)
	}
	flags := regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`).FindAllStringSubmatch(usage.String(), -1)
	if len(flags) == 0 {
		t.Fatalf("no flags in the usage text:\n%s", usage.String())
	}
	for _, m := range flags {
		if !strings.Contains(page, `\fB\-`+strings.ReplaceAll(m[1], "-", `\-`)+`\fR`) {
			t.Errorf("flag -%s is not in goscache.8", m[1])
		}
	}
}
