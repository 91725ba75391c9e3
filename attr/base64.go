package attr

// Postfix's base64 (util/base64_code.c) differs from encoding/base64 when
// decoding: the input length must be a multiple of four, '\r' and '\n' are
// not skipped, a '=' in the third or fourth place of a quartet ends the
// decoding and everything after it is ignored, and unused low bits of the
// last character are not checked. Encoding is the standard one with padding.

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// appendB64 appends the padded standard base64 encoding of s to dst.
func appendB64[T string | []byte](dst []byte, s T) []byte {
	i := 0
	for ; i+3 <= len(s); i += 3 {
		v := uint(s[i])<<16 | uint(s[i+1])<<8 | uint(s[i+2])
		dst = append(dst, b64Alphabet[v>>18&63], b64Alphabet[v>>12&63], b64Alphabet[v>>6&63], b64Alphabet[v&63])
	}
	switch len(s) - i {
	case 1:
		v := uint(s[i]) << 16
		dst = append(dst, b64Alphabet[v>>18&63], b64Alphabet[v>>12&63], '=', '=')
	case 2:
		v := uint(s[i])<<16 | uint(s[i+1])<<8
		dst = append(dst, b64Alphabet[v>>18&63], b64Alphabet[v>>12&63], b64Alphabet[v>>6&63], '=')
	}
	return dst
}

// unB64 returns the 6-bit value of the base64 character c.
func unB64(c byte) (byte, bool) {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A', true
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26, true
	case c >= '0' && c <= '9':
		return c - '0' + 52, true
	case c == '+':
		return 62, true
	case c == '/':
		return 63, true
	}
	return 0, false
}

// appendUnB64 appends the decoding of src to dst with Postfix's rules. On
// failure it returns dst unchanged and false.
func appendUnB64[T string | []byte](dst []byte, src T) ([]byte, bool) {
	if len(src)%4 != 0 {
		return dst, false
	}
	orig := len(dst)
	for i := 0; i < len(src); i += 4 {
		c0, ok0 := unB64(src[i])
		c1, ok1 := unB64(src[i+1])
		if !ok0 || !ok1 {
			return dst[:orig], false
		}
		dst = append(dst, c0<<2|c1>>4)
		if src[i+2] == '=' {
			break
		}
		c2, ok := unB64(src[i+2])
		if !ok {
			return dst[:orig], false
		}
		dst = append(dst, c1<<4|c2>>2)
		if src[i+3] == '=' {
			break
		}
		c3, ok := unB64(src[i+3])
		if !ok {
			return dst[:orig], false
		}
		dst = append(dst, c2<<6|c3)
	}
	return dst, true
}
