package delivery

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// maskedValue replaces the value of every masked header in a record.
const maskedValue = "******"

// lineBreaks keeps a header value on its line in a record.
var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")

// FormatHeaders renders h in HTTP wire form, one "Key: value\n" line per
// value, keys canonicalized (x-hook-id becomes X-Hook-Id) and sorted, the
// values of a key kept in order. Values of the headers named in masked
// (matched case-insensitively) are written as "******". A CR or LF inside
// a key or a value is written as a space so that every line stays one
// header.
func FormatHeaders(h http.Header, masked []string) string {
	hidden := make(map[string]bool, len(masked))
	for _, name := range masked {
		hidden[http.CanonicalHeaderKey(name)] = true
	}

	merged := canonicalHeader(h)
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	var b strings.Builder
	for _, k := range keys {
		for _, v := range merged[k] {
			if hidden[k] {
				v = maskedValue
			}
			b.WriteString(lineBreaks.Replace(k))
			b.WriteString(": ")
			b.WriteString(lineBreaks.Replace(v))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// canonicalHeader copies h with every key in canonical form, merging keys
// that differ only in case.
func canonicalHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		out[ck] = append(out[ck], vs...)
	}
	return out
}

// recordText turns bytes received from a receiver into text that any store
// accepts: invalid UTF-8 and NUL bytes become U+FFFD. When the text is
// longer than limit bytes, or truncated says bytes were left unread, it is
// cut at or below limit on a rune boundary and a marker line naming what
// (body, headers) exceeded the limit is appended.
func recordText(b []byte, limit int, truncated bool, what string) string {
	if len(b) > limit {
		b, truncated = b[:limit], true
	}
	if truncated {
		b = trimPartialRune(b)
	}

	s := cleanText(string(b))
	if len(s) > limit {
		s, truncated = cutAtRune(s, limit), true
	}

	if truncated {
		s += fmt.Sprintf("\n…[truncated by rehook: %s exceeded %d bytes]", what, limit)
	}
	return s
}

// cleanText replaces invalid UTF-8 and NUL bytes in s with U+FFFD.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// trimPartialRune drops an incomplete UTF-8 sequence left at the end of b
// by a cut, so the record does not end in a replacement character.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if !utf8.RuneStart(b[i]) {
			continue
		}
		if !utf8.FullRune(b[i:]) {
			return b[:i]
		}
		break
	}
	return b
}

// cutAtRune returns the longest prefix of the valid UTF-8 string s that is
// at most limit bytes long and ends on a rune boundary.
func cutAtRune(s string, limit int) string {
	for limit > 0 && !utf8.RuneStart(s[limit]) {
		limit--
	}
	return s[:limit]
}
