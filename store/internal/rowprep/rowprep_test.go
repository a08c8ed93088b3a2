package rowprep

import (
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/rehook/rehook/store"
)

func TestText(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"plain", "plain"},
		{"héllo ✓", "héllo ✓"},
		{"nul\x00byte", "nul\uFFFDbyte"},
		{"bad\xff", "bad\uFFFD"},
		{"\xfe\xff\x00", "\uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		got := Text(tt.in)
		if got != tt.want {
			t.Errorf("Text(%q): got %q, want %q", tt.in, got, tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Text(%q) = %q is not valid UTF-8", tt.in, got)
		}
	}
}

func TestDeliveryIDsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := DeliveryID()
		if len(id) != 36 || id[14] != '4' {
			t.Fatalf("DeliveryID() = %q, want a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("DeliveryID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestListsRoundTrip(t *testing.T) {
	headers := []store.ExtraHeader{{Key: "X-A", Value: "1"}, {Key: "X-B", Value: "2", Masked: true}}
	raw, err := EncodeList(headers)
	if err != nil {
		t.Fatalf("EncodeList: %v", err)
	}
	got, err := DecodeList[store.ExtraHeader]([]byte(raw))
	if err != nil {
		t.Fatalf("DecodeList: %v", err)
	}
	if !reflect.DeepEqual(got, headers) {
		t.Errorf("round trip: got %+v, want %+v", got, headers)
	}

	for _, empty := range [][]store.Trigger{nil, {}} {
		raw, err := EncodeList(empty)
		if err != nil || raw != "[]" {
			t.Errorf("EncodeList(%#v): got %q, %v; want \"[]\"", empty, raw, err)
		}
		got, err := DecodeList[store.Trigger]([]byte(raw))
		if err != nil || got != nil {
			t.Errorf("DecodeList(%q): got %#v, %v; want nil", raw, got, err)
		}
	}
}
