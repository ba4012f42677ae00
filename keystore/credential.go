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
	var out [checksumLen]byte
	checksumInto(&out, body)
	return string(out[:])
}

// checksumPrefix is the CRC-32 of the text every checksum starts with.
var checksumPrefix = crc32.ChecksumIEEE([]byte("accessgate:"))

// checksumInto writes the checksum of body to out. It does not allocate:
// the CRC is computed byte by byte over crc32's table, since crc32.Update
// makes its argument escape (58 bytes cost about as much either way).
func checksumInto(out *[checksumLen]byte, body string) {
	c := ^checksumPrefix
	for i := 0; i < len(body); i++ {
		c = crc32.IEEETable[byte(c)^body[i]] ^ c>>8
	}
	c = ^c
	v := uint64(c)
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
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
	var sum [checksumLen]byte
	checksumInto(&sum, key[:AccessKeyLen-checksumLen])
	return constantTimeEqual(sum[:], key[AccessKeyLen-checksumLen:])
}

// constantTimeEqual reports whether b and s hold the same bytes, in a time
// that depends on their lengths only.
func constantTimeEqual(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	var v byte
	for i := range len(b) {
		v |= b[i] ^ s[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
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
	var buf [AccessKeyLen]byte
	var sum [sha256.Size]byte
	if len(key) <= len(buf) {
		sum = sha256.Sum256(buf[:copy(buf[:], key)])
	} else {
		sum = sha256.Sum256([]byte(key))
	}
	var got [2 * sha256.Size]byte
	hex.Encode(got[:], sum[:])
	return constantTimeEqual(got[:], storedHash)
}
