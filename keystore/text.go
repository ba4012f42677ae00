package keystore

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// plainText reports whether s, a label or a name that people read in the
// console, the command line and logs, is valid UTF-8 without control
// characters (C0, DEL, C1) or bidirectional formatting characters, which
// can hide or reorder what is shown ("gen\u202etxt.exe" reads
// "genexe.txt").
func plainText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, disguisingRune)
}

// disguisingRune reports whether r is a control character or one of the
// bidirectional formatting characters: the Arabic letter mark, the
// left-to-right and right-to-left marks, the embeddings and overrides
// (U+202A–U+202E) and the isolates (U+2066–U+2069).
func disguisingRune(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// maxClientText bounds, in bytes, each piece of client-supplied text
// (path, method, origin, label...) that an audit event or a log line
// carries, so that the audit stream, capped by count, stays bounded in
// bytes too.
const maxClientText = 1024

// ClientText returns s cut to at most maxClientText bytes and marked with
// "…" when cut. The cut falls on a rune boundary, so valid UTF-8 stays
// valid. Every client-supplied string put into an audit event or a log
// line goes through it.
func ClientText(s string) string {
	if len(s) <= maxClientText {
		return s
	}
	cut := maxClientText
	for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return s[:cut] + "…"
}
