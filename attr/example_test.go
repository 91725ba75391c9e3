package attr_test

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/goscache/goscache/attr"
)

func ExampleEncoder() {
	w := bufio.NewWriter(os.Stdout)
	e := attr.NewEncoder(w, attr.FormatPlain)
	e.Encode(attr.List{attr.Int("status", 0), attr.Str("property", "")})
	// Output:
	// status=0
	// property=
}

func ExampleDecoder() {
	in := "request\x00find_endp\x00label\x00smtp:127.0.0.2:25\x00\x00dummy\x00\x00\x00"
	d := attr.NewDecoder(bufio.NewReader(strings.NewReader(in)), attr.Format0, attr.Limits{})
	for {
		l, err := d.Decode()
		if err != nil {
			fmt.Println(err)
			break
		}
		var parts []string
		for _, a := range l {
			parts = append(parts, fmt.Sprintf("%s=%q", a.Name, a.Value))
		}
		fmt.Println(strings.Join(parts, " "))
	}
	// Output:
	// request="find_endp" label="smtp:127.0.0.2:25"
	// dummy=""
	// EOF
}

func ExampleDecoder_Scan() {
	in := "request\x00save_endp\x00ttl\x00-2\x00label\x00L\x00property\x00P\x00extra\x00x\x00\x00"
	d := attr.NewDecoder(bufio.NewReader(strings.NewReader(in)), attr.Format0, attr.Limits{})
	d.Stream = "scache socket"
	d.Warn = func(msg string) { fmt.Println("warning:", msg) }

	var req, label, prop string
	var ttl int
	n, err := d.Scan(attr.FlagStrict|attr.FlagMore, attr.WantStr("request", &req))
	fmt.Println(n, err, req)
	n, err = d.Scan(attr.FlagStrict, attr.WantInt("ttl", &ttl), attr.WantStr("label", &label), attr.WantStr("property", &prop))
	fmt.Println(n, err, ttl, label, prop)
	// Output:
	// 1 <nil> save_endp
	// warning: unexpected attribute extra from scache socket (expecting: (list terminator))
	// 3 <nil> -2 L P
}
