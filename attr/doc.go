// Package attr implements Postfix's attribute-stream protocol: the three
// wire encodings of util/attr_print0.c, util/attr_print64.c and
// util/attr_print_plain.c, their scanners (util/attr_scan0.c,
// util/attr_scan64.c, util/attr_scan_plain.c), and the scanner rules Postfix
// applies when it parses a request (strict, missing, extra and more flags,
// STREQ checks, premature end of input).
//
// The null-terminated format [Format0] is Postfix's default (util/attr.h) and
// the one every scache(8) client speaks. [FormatBase64] and [FormatPlain]
// are provided for completeness and for tests.
//
// The package works on caller-owned buffered readers and writers because the
// protocols built on it pass file descriptors on the same socket: before a
// descriptor is received the caller checks that [Decoder.Buffered] is zero,
// so that no byte carrying SCM_RIGHTS data is ever read into user space.
//
// Main types:
//   - [Attr] and [List]: one attribute list in wire order.
//   - [Encoder] and [Append]: write lists.
//   - [Decoder]: read whole lists ([Decoder.Decode]) or scan them the way
//     Postfix does ([Decoder.Scan]).
//   - [ParseUint32]: Postfix's (glibc sscanf "%u") integer syntax.
//
// attr imports only the standard library and knows nothing of requests,
// sockets or descriptors.
package attr
