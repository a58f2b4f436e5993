// Package secret makes and checks the secrets of Carillon: webhook and API
// tokens (kept only as SHA-256 hashes), passwords (bcrypt), and the server's
// secret key, which seals webhook tokens with AES-256-GCM so administrators
// can copy a webhook URL again later.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"
)

const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// RandomString returns n characters from [A-Za-z0-9], uniformly chosen by
// the cryptographic RNG.
func RandomString(n int) string {
	out := make([]byte, n)
	buf := make([]byte, n+n/2)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		for _, b := range buf {
			// 248 = 4*62: rejecting higher bytes keeps the choice uniform.
			if b >= 248 {
				continue
			}
			out[i] = alphanumeric[int(b)%len(alphanumeric)]
			if i++; i == n {
				break
			}
		}
	}
	return string(out)
}

// NewWebhookToken returns a token shaped like Amazon Chime's: 72 characters
// of [A-Za-z0-9].
func NewWebhookToken() string { return RandomString(72) }

// NewAPIToken returns a new API token.
func NewAPIToken() string { return "crl_" + RandomString(44) }

// NewSessionToken returns a new session cookie value.
func NewSessionToken() string { return RandomString(43) }

// Hash returns the SHA-256 hash under which a token is stored.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Equal compares two hashes in constant time.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// HashPassword returns the bcrypt hash of a password. The password is first
// reduced with SHA-256 so that bcrypt's 72-byte input limit never truncates
// or refuses a long passphrase.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword(prehash(password), bcrypt.DefaultCost)
	return string(h), err
}

// CheckPassword reports whether password matches hash.
func CheckPassword(hash, password string) bool {
	if hash == "" {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), prehash(password)) == nil
}

func prehash(password string) []byte {
	h := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(h[:]))
}

// Key is the server's secret key.
type Key struct {
	aead cipher.AEAD
	raw  []byte
}

// LoadOrCreateKey reads the 32-byte key at path, creating it (mode 0600)
// when it does not exist.
func LoadOrCreateKey(path string) (*Key, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		raw = make([]byte, 32)
		rand.Read(raw)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := WriteFileSync(path, raw, 0o600); err != nil {
			return nil, fmt.Errorf("write secret key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	if len(raw) != 32 {
		return nil, fmt.Errorf("secret key %s: want 32 bytes, found %d", path, len(raw))
	}
	return NewKey(raw)
}

// NewKey makes a Key of 32 raw bytes.
func NewKey(raw []byte) (*Key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Key{aead: aead, raw: append([]byte(nil), raw...)}, nil
}

// Fingerprint identifies the key without revealing it; the database records
// it so that a node with another key refuses to start.
func (k *Key) Fingerprint() string {
	h := sha256.Sum256(append([]byte("carillon key fingerprint\x00"), k.raw...))
	return hex.EncodeToString(h[:16])
}

// Seal encrypts plaintext: nonce followed by ciphertext.
func (k *Key) Seal(plaintext string) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	rand.Read(nonce)
	return k.aead.Seal(nonce, nonce, []byte(plaintext), nil)
}

// Open decrypts what Seal produced.
func (k *Key) Open(sealed []byte) (string, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < ns {
		return "", errors.New("sealed value too short")
	}
	plain, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], nil)
	return string(plain), err
}

// WriteFileSync writes a new file with mode perm and fsyncs it; it fails if
// the file exists.
func WriteFileSync(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
