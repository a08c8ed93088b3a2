package delivery

import (
	"net/http"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()

	tests := []struct {
		code int
		want Result
	}{
		{100, FatalError}, {101, FatalError}, {103, FatalError},
		{200, Success}, {201, Success}, {202, Success}, {204, Success}, {299, Success},
		{301, FatalError}, {302, FatalError}, {304, FatalError}, {307, FatalError},
		{400, FatalError}, {401, FatalError}, {403, FatalError}, {404, FatalError},
		{408, RetriableError}, {409, FatalError}, {410, FatalError}, {413, FatalError},
		{429, RetriableError},
		{500, RetriableError}, {501, FatalError}, {502, RetriableError},
		{503, RetriableError}, {504, RetriableError}, {599, RetriableError},
		{0, FatalError}, {600, FatalError}, {999, FatalError},
	}
	for _, tt := range tests {
		if got := Classify(tt.code); got != tt.want {
			t.Errorf("Classify(%d) = %s, want %s", tt.code, got, tt.want)
		}
	}
}

func TestFormatHeaders(t *testing.T) {
	t.Parallel()

	h := http.Header{
		"x-webhook-id":  {"wh-1"},
		"X-Webhook-Id":  {"wh-2"},
		"Content-Type":  {"application/json"},
		"X-Api-Key":     {"key-1", "key-2"},
		"authorization": {"Bearer t0ken"},
		"X-Folded":      {"line1\r\nInjected: yes"},
		"X-Empty":       {""},
	}
	got := FormatHeaders(h, []string{"x-api-key", "AUTHORIZATION", "X-Not-Present"})

	want := "Authorization: ******\n" +
		"Content-Type: application/json\n" +
		"X-Api-Key: ******\n" +
		"X-Api-Key: ******\n" +
		"X-Empty: \n" +
		"X-Folded: line1  Injected: yes\n" +
		"X-Webhook-Id: wh-1\n" +
		"X-Webhook-Id: wh-2\n"
	// Keys that differ only in case merge in map order; compare as a set.
	if sortedLines(got) != sortedLines(want) {
		t.Errorf("FormatHeaders =\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(got, "key-1") || strings.Contains(got, "t0ken") {
		t.Errorf("FormatHeaders leaks a masked value:\n%s", got)
	}
	if FormatHeaders(nil, nil) != "" {
		t.Errorf("FormatHeaders(nil) = %q, want empty", FormatHeaders(nil, nil))
	}
}

// sortedLines checks key order: lines must already be sorted by key, and
// the values of one key compare as a set.
func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := 1; i < len(lines); i++ {
		prevKey, _, _ := strings.Cut(lines[i-1], ":")
		key, _, _ := strings.Cut(lines[i], ":")
		if key < prevKey {
			return "unsorted: " + s
		}
	}
	sorted := append([]string(nil), lines...)
	for i := range sorted {
		for j := i + 1; j < len(sorted); j++ {
			if sorted[j] < sorted[i] {
				sorted[i], sorted[j] = sorted[j], sorted[i]
			}
		}
	}
	return strings.Join(sorted, "\n")
}

func TestRecordText(t *testing.T) {
	t.Parallel()

	marker := func(limit string) string {
		return "\n…[truncated by rehook: body exceeded " + limit + " bytes]"
	}

	tests := []struct {
		name      string
		in        string
		limit     int
		truncated bool // more bytes were left unread
		want      string
	}{
		{"short", "hello", 10, false, "hello"},
		{"exactly the cap", "0123456789", 10, false, "0123456789"},
		{"one byte over", "0123456789X", 10, false, "0123456789" + marker("10")},
		{"unread rest", "0123456789", 10, true, "0123456789" + marker("10")},
		{"2-byte rune straddles", "012345678é", 10, false, "012345678" + marker("10")},
		{"3-byte rune straddles at 1", "012345678€", 10, false, "012345678" + marker("10")},
		{"3-byte rune straddles at 2", "01234567€", 9, false, "01234567" + marker("9")},
		{"3-byte rune fits", "0123456€x", 10, false, "0123456€" + marker("10")},
		{"4-byte rune straddles at 3", "0123456😀", 10, false, "0123456" + marker("10")},
		{"4-byte rune straddles at 1", "012345678😀", 10, false, "012345678" + marker("10")},
		{"4-byte rune fits", "012345😀", 10, false, "012345😀"},
		{"cut inside read, rune incomplete", "01234567\xe2\x82", 10, true,
			"01234567" + marker("10")},
		{"invalid bytes replaced", "a\xffb\x00c", 100, false, "a\uFFFDb\uFFFDc"},
		{"replacement grows past the cap", "\xff\xff\xfe\xfe\xff", 4, false,
			"\uFFFD" + marker("4")},
		{"all multi-byte", strings.Repeat("日", 10), 10, false, "日日日" + marker("10")},
	}
	for _, tt := range tests {
		got := recordText([]byte(tt.in), tt.limit, tt.truncated, "body")
		if got != tt.want {
			t.Errorf("%s: recordText(%q, %d) = %q, want %q", tt.name, tt.in, tt.limit, got, tt.want)
		}
	}
}
