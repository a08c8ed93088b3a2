package delivery

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets below run with their seeds under go test, and search
// further with go test -fuzz (see README, Security).

// FuzzFormatHeaders records headers read from raw, one "Key: value" per
// line split at the first colon, masking the header named masked.
func FuzzFormatHeaders(f *testing.F) {
	for _, s := range []struct{ raw, masked string }{
		{"Content-Type: application/json\nX-Token: s3cr3t\nx-token: again", "x-token"},
		{"Set-Cookie: a=1\nSet-Cookie: b=2", "set-cookie"},
		{"X-Evil: line\r\nInjected: yes", ""},
		{"Bad Key: v\nX-Bin: \xff\xfe\x00", "bad key"},
		{"x\ny: \n: empty key", "y"},
		{"X-Split\r\nName: v", "X-Split\r\nName"},
	} {
		f.Add(s.raw, s.masked)
	}
	f.Fuzz(func(t *testing.T, raw, masked string) {
		h := http.Header{}
		values := 0
		for _, line := range strings.Split(raw, "\n") {
			k, v, _ := strings.Cut(line, ":")
			h[k] = append(h[k], strings.TrimPrefix(v, " "))
			values++
		}

		got := FormatHeaders(h, []string{masked})
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if got == "" || !strings.HasSuffix(got, "\n") || len(lines) != values {
			t.Fatalf("FormatHeaders(%q): %d lines %q, want one per value, %d", raw, len(lines),
				got, values)
		}
		if strings.Contains(got, "\r") {
			t.Fatalf("FormatHeaders(%q) = %q holds a CR", raw, got)
		}
		for _, line := range lines {
			if !strings.Contains(line, ": ") {
				t.Fatalf("line %q has no \": \"", line)
			}
		}
		hidden := http.CanonicalHeaderKey(masked)
		if values := canonicalHeader(h)[hidden]; !strings.ContainsAny(hidden, "\r\n") {
			n := 0
			for _, line := range lines {
				if line == hidden+": "+maskedValue {
					n++
				}
			}
			if n < len(values) {
				t.Fatalf("FormatHeaders(%q) = %q: %d of %d values of %s masked", raw, got, n,
					len(values), hidden)
			}
		}
		if clean := cleanText(got); !utf8.ValidString(clean) || strings.Contains(clean, "\x00") {
			t.Fatalf("cleanText(FormatHeaders(%q)) = %q: invalid UTF-8 or NUL", raw, clean)
		}
	})
}

// FuzzRecordText cuts bytes from a receiver to a limit: the text is valid
// UTF-8 without NUL, its start at most limit bytes, marked when cut, and
// unchanged when it was clean text within the limit.
func FuzzRecordText(f *testing.F) {
	for _, s := range []struct {
		b         string
		limit     int
		truncated bool
	}{
		{"hello", 64, false},
		{"héllo wörld", 3, false},
		{"日本語テキスト", 4, true},
		{"\xff\xfe\x00binary\x00", 5, false},
		{"\xe6\x97", 2, true},
		{"", 0, true},
		{strings.Repeat("é", 100), 101, false},
	} {
		f.Add([]byte(s.b), s.limit, s.truncated)
	}
	f.Fuzz(func(t *testing.T, b []byte, limit int, truncated bool) {
		if limit < 0 || limit > 1<<16 {
			t.Skip("limits are positive and small")
		}
		got := recordText(b, limit, truncated, "body")

		if !utf8.ValidString(got) || strings.Contains(got, "\x00") {
			t.Fatalf("recordText(%q, %d) = %q: invalid UTF-8 or NUL", b, limit, got)
		}
		text, marker, cut := strings.Cut(got, "\n…[truncated by rehook: body exceeded ")
		if cut && !strings.HasSuffix(marker, " bytes]") {
			t.Fatalf("recordText(%q, %d) = %q: malformed marker", b, limit, got)
		}
		if cut && len(text) > limit {
			t.Fatalf("recordText(%q, %d): %d bytes before the marker, want at most %d", b, limit,
				len(text), limit)
		}
		clean := utf8.Valid(b) && !strings.Contains(string(b), "\x00")
		if clean && !truncated && len(b) <= limit && got != string(b) {
			t.Fatalf("recordText(%q, %d) = %q, want the text unchanged", b, limit, got)
		}
		if (truncated || len(b) > limit) && !cut {
			t.Fatalf("recordText(%q, %d, %v) = %q, want a marker", b, limit, truncated, got)
		}
	})
}
