package keystore

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash/crc32"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Lengths of the credential parts.
const (
	// AccessIDLen is the length of an Access ID: "su" and 12 base62 characters.
	AccessIDLen = 14
	// AccessKeyLen is the length of an Access Key: 58 random base62
	// characters followed by a 6-character checksum.
	AccessKeyLen = 64
	// checksumLen is the number of trailing checksum characters of a key.
	checksumLen = 6
	// accessIDPrefix starts every Access ID.
	accessIDPrefix = "su"
)

// base62Index maps a byte to its base62 digit value, or 0xFF.
var base62Index = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = byte(i)
	}
	return t
}()

// randomBase62 returns n uniformly random base62 characters.
func randomBase62(n int) string {
	out := make([]byte, n)
	buf := make([]byte, n+n/2+8)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic("keystore: crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			// 248 = 4*62: reject the tail so every digit is equally likely.
			if b >= 248 {
				continue
			}
			out[i] = base62[b%62]
			i++
			if i == n {
				break
			}
		}
	}
	return string(out)
}

// NewAccessID returns a fresh random Access ID.
func NewAccessID() string { return accessIDPrefix + randomBase62(AccessIDLen-len(accessIDPrefix)) }

// NewAccessKey returns a fresh random Access Key carrying its checksum.
func NewAccessKey() string {
	body := randomBase62(AccessKeyLen - checksumLen)
	return body + checksum(body)
}

// checksum encodes the CRC-32 of body as 6 base62 characters.
func checksum(body string) string {
	c := crc32.Update(crc32.Update(0, crc32.IEEETable, []byte("accessgate:")), crc32.IEEETable, []byte(body))
	var out [checksumLen]byte
	v := uint64(c)
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out[:])
}

// ValidAccessID reports whether id has the shape of an Access ID.
func ValidAccessID(id string) bool {
	if len(id) != AccessIDLen || id[:2] != accessIDPrefix {
		return false
	}
	return isBase62(id[2:])
}

// ValidAccessKey reports whether key has the shape of an Access Key and its
// checksum matches, so that mistyped or forged keys are rejected without
// any I/O.
func ValidAccessKey(key string) bool {
	if len(key) != AccessKeyLen || !isBase62(key) {
		return false
	}
	body := key[:AccessKeyLen-checksumLen]
	return subtle.ConstantTimeCompare([]byte(checksum(body)), []byte(key[AccessKeyLen-checksumLen:])) == 1
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if base62Index[s[i]] == 0xFF {
			return false
		}
	}
	return true
}

// HashSecret returns the stored form of an Access Key: the hex SHA-256.
// Keys carry 58 random base62 characters (about 345 bits), so a fast hash
// is enough; no secret is ever stored in the clear.
func HashSecret(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// secretMatches compares a presented key with a stored hash in constant time.
func secretMatches(key, storedHash string) bool {
	got := HashSecret(key)
	return subtle.ConstantTimeCompare([]byte(got), []byte(storedHash)) == 1
}
