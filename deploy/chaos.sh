#!/usr/bin/env bash
# Chaos run: rehook api and two workers on a Redis and a PostgreSQL of their
# own (free loopback ports; the machine's own servers are not touched), a
# loopback receiver, retriggers at a steady rate, and meanwhile SIGKILLed
# workers and restarted Redis and PostgreSQL. Prints what was accepted,
# delivered, lost, stuck, duplicated, and sent again after SUCCESS; exits
# non-zero when anything accepted is lost or stuck, or a finished execution
# was sent again.
#
#   deploy/chaos.sh                      # 10,000 retriggers, 2 kills, 1+1 restarts
#   deploy/chaos.sh -n 1000 -worker-kills 1    # the short version CI runs
#
# Needs Go, redis-server and PostgreSQL's server binaries (initdb, pg_ctl);
# as root it runs PostgreSQL as the postgres user. Other flags: -rate,
# -redis-restarts, -postgres-restarts, -drain-timeout, -keep.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/rehook" ./cmd/rehook
go build -o "$work/chaos" ./deploy/chaos

echo "rehook chaos run, $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -srm)," \
  "$(nproc) CPUs, $(redis-server --version | awk '{print $3}'), PostgreSQL" \
  "$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)"
"$work/chaos" -bin "$work/rehook" "$@"
