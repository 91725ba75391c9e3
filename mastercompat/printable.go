package mastercompat

// printable returns s with every byte that Postfix would not log replaced
// by '?', the way util/printable.c masks the text of every log line
// (msg_output.c runs it over the whole formatted message): printable ASCII
// (0x20-0x7e) is kept; with utf8 (Postfix's util_utf8_enable, which
// mail_params.c sets from smtputf8_enable) a byte 0xc2-0xfe followed by a
// continuation byte 0x80-0xbf is kept together with every continuation
// byte after it, as 3.7's lenient check does. Everything else, control
// characters, DEL and stray high bytes included, becomes '?'. NUL, which
// a C string cannot hold, becomes '?' too. The result has the length of
// s; s itself is returned, without allocating, when nothing is replaced.
func printable(s string, utf8 bool) string {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		ch := b[i]
		switch {
		case ch >= 0x20 && ch < 0x7f:
		case utf8 && ch >= 0xc2 && ch <= 0xfe && i+1 < len(b) && isCont(b[i+1]):
			for i+1 < len(b) && isCont(b[i+1]) {
				i++
			}
		default:
			b[i] = '?'
		}
	}
	return string(b)
}

func isCont(ch byte) bool { return ch >= 0x80 && ch < 0xc0 }
