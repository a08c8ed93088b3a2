package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// embeddedRedisInfo describes the embedded Redis for the dashboard's Redis
// page in INFO's format. miniredis answers INFO with its clients and stats
// sections only, and keeps nothing on disk, so the rest reads n/a.
func embeddedRedisInfo(mr *miniredis.Miniredis, started time.Time) func() (string, string) {
	return func() (string, string) {
		up := time.Since(started)
		lines := []string{
			"# Server",
			"redis_version:miniredis (in-process, rehook dev)",
			fmt.Sprintf("uptime_in_seconds:%d", int(up.Seconds())),
			fmt.Sprintf("uptime_in_days:%d", int(up.Hours()/24)),
			"# Clients",
			fmt.Sprintf("connected_clients:%d", mr.CurrentConnectionCount()),
			"# Memory",
			"used_memory_human:n/a",
			"used_memory_peak_human:n/a",
			"mem_fragmentation_ratio:n/a",
			"# Persistence",
			"rdb_changes_since_last_save:n/a (memory only)",
			"# Stats",
			fmt.Sprintf("total_connections_received:%d", mr.TotalConnectionCount()),
			fmt.Sprintf("total_commands_processed:%d", mr.CommandCount()),
			"# Replication",
			"role:master",
			"connected_slaves:0",
			"# Keyspace",
			fmt.Sprintf("db0:keys=%d", len(mr.Keys())),
		}
		return mr.Addr(), strings.Join(lines, "\r\n") + "\r\n"
	}
}
