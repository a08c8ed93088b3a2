// Package rowprep prepares domain values the way both SQL stores write them,
// so that the two fill in and clean up rows alike.
package rowprep

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rehook/rehook/store"
)

// Now is the current time as rows record it: UTC, whole milliseconds.
func Now() time.Time {
	return time.Now().UTC().Truncate(time.Millisecond)
}

// Time is t as the stores keep it: UTC, whole microseconds. The zero time
// stays zero.
func Time(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// Executions returns copies of execs as CreateExecutions inserts them, all
// but their IDs: in registryID, pending, created at created, with a new
// DeliveryID when it is empty, due at created when NextAttemptAt is zero,
// times as Time keeps them and recorded text cleaned by Text. An execution
// of another registry, or a nil one, is an error.
func Executions(
	registryID int64, execs []*store.Execution, created time.Time,
) ([]store.Execution, error) {
	rows := make([]store.Execution, len(execs))
	for i, e := range execs {
		if e == nil {
			return nil, fmt.Errorf("execution %d is nil", i)
		}
		if e.RegistryID != 0 && e.RegistryID != registryID {
			return nil, fmt.Errorf("execution %d belongs to registry %d", i, e.RegistryID)
		}

		x := *e
		x.ID = 0
		x.RegistryID = registryID
		x.State = store.StatePending
		x.Created = created
		if x.DeliveryID == "" {
			x.DeliveryID = DeliveryID()
		}
		if x.NextAttemptAt.IsZero() {
			x.NextAttemptAt = created
		}
		x.NextAttemptAt = Time(x.NextAttemptAt)
		x.ClaimedUntil = Time(x.ClaimedUntil)

		x.Error = Text(x.Error)
		x.RequestURL = Text(x.RequestURL)
		x.RequestHeaders = Text(x.RequestHeaders)
		x.RequestBody = Text(x.RequestBody)
		x.ResponseStatus = Text(x.ResponseStatus)
		x.ResponseHeaders = Text(x.ResponseHeaders)
		x.ResponseBody = Text(x.ResponseBody)
		rows[i] = x
	}
	return rows, nil
}

// Text makes recorded delivery text storable in any text column: valid UTF-8
// without NUL bytes. Bytes that do not fit become U+FFFD.
func Text(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// DeliveryID returns a random (version 4) UUID in its usual text form.
func DeliveryID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80

	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// EncodeList is list as a JSON array; an empty or nil list is "[]".
func EncodeList[T any](list []T) (string, error) {
	if len(list) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// DecodeList reads a JSON array written by EncodeList; an empty one is nil.
func DecodeList[T any](raw []byte) ([]T, error) {
	var list []T
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}
