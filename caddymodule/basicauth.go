package caddymodule

import (
	"encoding/base64"
	"strings"
)

// maxAuthorizationLen bounds the Authorization header we decode. A valid
// credential is far shorter (14 + 1 + 64 characters, base64-encoded).
const maxAuthorizationLen = 512

// parseBasic extracts the Access ID and Access Key of a Basic Authorization
// header. The scheme is case-insensitive; the user part must not contain a
// colon (the key may, though a valid one never does).
func parseBasic(header string) (id, key string, ok bool) {
	const prefix = "basic "
	if len(header) <= len(prefix) || len(header) > maxAuthorizationLen || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", "", false
	}
	enc := strings.TrimLeft(header[len(prefix):], " ")
	var buf [maxAuthorizationLen]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(enc))
	if err != nil || n == 0 {
		return "", "", false
	}
	dec := buf[:n]
	for i, c := range dec {
		if c == ':' {
			if i == 0 {
				return "", "", false
			}
			return string(dec[:i]), string(dec[i+1:]), true
		}
	}
	return "", "", false
}
