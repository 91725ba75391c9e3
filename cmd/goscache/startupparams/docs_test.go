package startupparams

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestStartupParams_docs keeps the figures that docs/operator.md and
// goscache(8) give for "how many parameters scache expands at startup"
// equal to the lists, one per release: operator.md's table has a row
// "| <release> | <count> | <file> |" for every release with a list of its
// own, and the manual page names "<count> in <release>" for each.
func TestStartupParams_docs(t *testing.T) {
	docs := []struct {
		path   string
		format func(r release, n int) string
	}{
		{"../../../docs/operator.md", func(r release, n int) string {
			return fmt.Sprintf(`(?m)^\| %s[ |].*\| %d \| `+"`%s`"+` \|$`, regexp.QuoteMeta(r.String()), n, regexp.QuoteMeta(file(r)))
		}},
		{"../../../docs/man/goscache.8", func(r release, n int) string {
			return fmt.Sprintf(`\b%d in %s\b`, n, regexp.QuoteMeta(r.String()))
		}},
	}
	for _, d := range docs {
		b, err := os.ReadFile(d.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range releases {
			n := len(For(r.String()))
			if re := regexp.MustCompile(d.format(r, n)); !re.Match(b) {
				t.Errorf("%s does not say that scache %s expands %d parameters at startup (%s has %d; want a match for %s)",
					d.path, r, n, file(r), n, strconv.Quote(re.String()))
			}
		}
	}
}
