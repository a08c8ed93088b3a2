package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
)

func TestParseRedisURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want asynq.RedisConnOpt
	}{
		{"one server", "redis://:pw@127.0.0.1:6379/2",
			asynq.RedisClientOpt{Addr: "127.0.0.1:6379", Password: "pw", DB: 2}},
		{"sentinels", "redis-sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/3?master=main",
			asynq.RedisFailoverClientOpt{MasterName: "main", Password: "pw", DB: 3,
				SentinelAddrs: []string{"127.0.0.1:26379", "127.0.0.1:26380"}}},
		{"sentinel with its own password",
			"redis-sentinel://u:p%40ss@[::1]:26379?master=m&sentinel_password=sp",
			asynq.RedisFailoverClientOpt{MasterName: "m", Username: "u", Password: "p@ss",
				SentinelPassword: "sp", SentinelAddrs: []string{"[::1]:26379"}}},
		{"cluster", "redis-cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002",
			asynq.RedisClusterClientOpt{
				Addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}}},
		{"cluster with password and slash", "REDIS-CLUSTER://:pw@127.0.0.1:7000/",
			asynq.RedisClusterClientOpt{Addrs: []string{"127.0.0.1:7000"}, Password: "pw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRedisURL(tt.url)
			if err != nil {
				t.Fatalf("parseRedisURL(%q): %v", tt.url, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseRedisURL(%q):\ngot  %#v\nwant %#v", tt.url, got, tt.want)
			}
		})
	}

	t.Run("cluster over TLS", func(t *testing.T) {
		got, err := parseRedisURL("rediss-cluster://:pw@redis-0.local:6380,redis-1.local:6380")
		if err != nil {
			t.Fatal(err)
		}
		opt, ok := got.(asynq.RedisClusterClientOpt)
		if !ok || opt.TLSConfig == nil || opt.TLSConfig.ServerName != "redis-0.local" ||
			len(opt.Addrs) != 2 {
			t.Errorf("got %#v, want a cluster with TLS for redis-0.local", got)
		}
	})
}

func TestParseRedisURLRefuses(t *testing.T) {
	tests := []struct {
		name, url, wantErr string
	}{
		{"no scheme", "127.0.0.1:6379", "no scheme"},
		{"unknown scheme", "memcached://127.0.0.1:11211", `"memcached" is not supported`},
		{"sentinel without master", "redis-sentinel://127.0.0.1:26379", "master=NAME"},
		{"sentinel unknown parameter", "redis-sentinel://127.0.0.1:26379?master=m&x=1",
			`unknown parameter "x"`},
		{"cluster without port", "redis-cluster://127.0.0.1", "not HOST:PORT"},
		{"cluster bad port", "redis-cluster://127.0.0.1:7000,127.0.0.1:99999", "no valid port"},
		{"cluster empty address", "redis-cluster://127.0.0.1:7000,", "not HOST:PORT"},
		{"cluster database", "redis-cluster://127.0.0.1:7000/1", "database 0 only"},
		{"cluster parameters", "redis-cluster://127.0.0.1:7000?db=1", "no parameters"},
		{"bad database", "redis-sentinel://127.0.0.1:26379/x?master=m", "not a database"},
		{"bad one-server URL", "redis://:secretpw@127.0.0.1:port", "does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseRedisURL(tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("parseRedisURL(%q): got error %v, want one containing %q",
					tt.url, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}
