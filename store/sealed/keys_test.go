package sealed

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// testKey is key n of the tests, 32 bytes.
func testKey(n byte) []byte { return bytes.Repeat([]byte{n}, KeySize) }

func b64(n byte) string { return base64.StdEncoding.EncodeToString(testKey(n)) }

func TestParseKey(t *testing.T) {
	raw := testKey(7)
	want, err := ParseKey(hex.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		value   string
		wantErr bool
	}{
		{"hex", hex.EncodeToString(raw), false},
		{"hex upper case", strings.ToUpper(hex.EncodeToString(raw)), false},
		{"base64", base64.StdEncoding.EncodeToString(raw), false},
		{"base64 unpadded", base64.RawStdEncoding.EncodeToString(raw), false},
		{"base64 url", base64.URLEncoding.EncodeToString(raw), false},
		{"base64 url unpadded", base64.RawURLEncoding.EncodeToString(raw), false},
		{"surrounding space", " " + hex.EncodeToString(raw) + "\n", false},
		{"16 bytes", base64.StdEncoding.EncodeToString(raw[:16]), true},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(raw, 1)), true},
		{"31 bytes hex", hex.EncodeToString(raw[:31]), true},
		{"not an encoding", "correct horse battery staple!!", true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.value)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseKey(%q): got no error, want one", tt.value)
				}
				if tt.value != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.value)) {
					t.Errorf("error %q quotes the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", tt.value, err)
			}
			if got.ID() != want.ID() {
				t.Errorf("key id: got %s, want %s (the same key)", got.ID(), want.ID())
			}
		})
	}

	other, _ := ParseKey(b64(8))
	if other.ID() == want.ID() || len(want.ID()) != keyIDLen {
		t.Errorf("key ids: got %q and %q, want two different ids of %d hex digits",
			want.ID(), other.ID(), keyIDLen)
	}
	if strings.Contains(hex.EncodeToString(raw), want.ID()) {
		t.Errorf("key id %s is part of the key", want.ID())
	}
}

func TestSealAndOpen(t *testing.T) {
	secret := []byte("whsec-key-bytes-0123456789abcdef")
	ring, err := NewKeyring(b64(1), []string{b64(2)})
	if err != nil {
		t.Fatal(err)
	}

	sealed, err := ring.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	header := []byte(prefix + ring.CurrentID() + ":")
	if bytes.Contains(sealed, secret) || !bytes.HasPrefix(sealed, header) {
		t.Fatalf("sealed form %q: want the prefix and key id, and not the secret", sealed)
	}
	again, _ := ring.Seal(secret)
	if bytes.Equal(sealed, again) {
		t.Errorf("two seals of one secret are equal; want a fresh nonce each time")
	}
	if got, err := ring.Open(sealed); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Open(Seal(secret)): got %q, %v; want the secret", got, err)
	}

	older, _ := NewKeyring(b64(2), nil)
	byOlder, _ := older.Seal(secret)
	if got, err := ring.Open(byOlder); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("open a secret sealed by an older key: got %q, %v; want the secret", got, err)
	}

	tests := []struct {
		name    string
		ring    *Keyring
		stored  []byte
		want    []byte
		wantErr error
	}{
		{"plaintext passes", ring, secret, secret, nil},
		{"unknown key", older, sealed, nil, ErrNoKey},
		{"no key at all", mustRing(t, "", nil), sealed, nil, ErrNoKey},
		{"ciphertext altered", ring, flip(sealed, len(sealed)-1), nil, ErrCorrupt},
		{"nonce altered", ring, flip(sealed, headerLen), nil, ErrCorrupt},
		{"key id altered to another configured key", ring,
			append([]byte(prefix+older.CurrentID()+":"), sealed[headerLen:]...), nil, ErrCorrupt},
		{"cut short", ring, sealed[:headerLen+nonceLen+tagLen-1], nil, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ring.Open(tt.stored)
			if !errors.Is(err, tt.wantErr) || !bytes.Equal(got, tt.want) {
				t.Errorf("Open: got %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}

	plain := mustRing(t, "", nil)
	if got, _ := plain.Seal(secret); !bytes.Equal(got, secret) || plain.Encrypts() {
		t.Errorf("keyring without a current key: Seal gave %q, Encrypts %v; want the secret "+
			"as it is and false", got, plain.Encrypts())
	}
	if got, _ := ring.Seal(nil); got != nil {
		t.Errorf("Seal(nil): got %q, want nil", got)
	}
}

func mustRing(t *testing.T, current string, older []string) *Keyring {
	t.Helper()
	k, err := NewKeyring(current, older)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// flip returns b with byte i changed.
func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0x55
	return out
}

func TestNewKeyringNamesTheBadKey(t *testing.T) {
	if _, err := NewKeyring("short", nil); err == nil {
		t.Errorf("bad current key: got no error")
	}
	_, err := NewKeyring(b64(1), []string{b64(2), "bad"})
	if err == nil || !strings.Contains(err.Error(), "older key 2") {
		t.Errorf("bad older key: got %v, want an error naming older key 2", err)
	}
}
