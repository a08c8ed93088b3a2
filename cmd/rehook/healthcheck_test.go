package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/readyz"
	_ = ln.Close()

	tests := []struct {
		name    string
		args    []string
		wantErr string // empty: success
	}{
		{"ready", []string{srv.URL + "/readyz"}, ""},
		{"not ready", []string{srv.URL + "/down"}, "503 Service Unavailable"},
		{"nothing listening", []string{closed}, "connection refused"},
		{"not http", []string{"ftp://127.0.0.1/x"}, "want http://"},
		{"two URLs", []string{srv.URL, srv.URL}, "one URL at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"healthcheck"}, tt.args...)
			err := runWith(t.Context(), args, &out, &errOut, func(string) string { return "" })
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("rehook %v: %v, want success", args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("rehook %v: got error %v, want one containing %q", args, err, tt.wantErr)
			}
		})
	}
}
