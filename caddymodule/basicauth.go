package caddymodule

import (
	"encoding/base64"
	"strings"
)

// maxAuthorizationLen bounds the Authorization header we decode. A valid
// credential is far shorter (14 + 1 + 64 characters, base64-encoded).
const maxAuthorizationLen = 512

// basicBuf holds a decoded Basic credential. It is big enough for any
// header of at most maxAuthorizationLen bytes.
type basicBuf [maxAuthorizationLen * 3 / 4]byte

// decodeBasic extracts the Access ID and Access Key of a Basic
// Authorization header into buf: they are slices of buf, so that a cache
// hit needs no copy of the credential on the heap. The scheme is
// case-insensitive; the user part must not contain a colon (the key may,
// though a valid one never does).
func decodeBasic(header string, buf *basicBuf) (id, key []byte, ok bool) {
	const prefix = "basic "
	if len(header) <= len(prefix) || len(header) > maxAuthorizationLen || !strings.EqualFold(header[:len(prefix)], prefix) {
		return nil, nil, false
	}
	enc := strings.TrimLeft(header[len(prefix):], " ")
	n, err := base64.StdEncoding.Decode(buf[:], []byte(enc))
	if err != nil || n == 0 {
		return nil, nil, false
	}
	dec := buf[:n]
	for i, c := range dec {
		if c == ':' {
			if i == 0 {
				return nil, nil, false
			}
			return dec[:i], dec[i+1:], true
		}
	}
	return nil, nil, false
}
