// Package testenv gives tests the Redis and database they run against: the
// real servers named by REHOOK_TEST_REDIS_URL and REHOOK_TEST_DATABASE_URL,
// or the embedded defaults (miniredis, a SQLite file) when those are unset.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// redisDBs are the Redis databases tests may take; 0 is left alone.
const redisDBs = 16

// Redis returns the URL of a Redis database that the test has to itself.
// With REHOOK_TEST_REDIS_URL set it locks one of databases 1-15 of that
// server (across test processes too), flushes it, and unlocks it at cleanup;
// otherwise it starts an in-process Redis.
func Redis(t testing.TB) string {
	t.Helper()
	base := os.Getenv("REHOOK_TEST_REDIS_URL")
	if base == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			t.Fatalf("start miniredis: %v", err)
		}
		t.Cleanup(mr.Close)
		return "redis://" + mr.Addr()
	}

	opt, err := redis.ParseURL(base)
	if err != nil {
		t.Fatalf("REHOOK_TEST_REDIS_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lockDB := redis.NewClient(&redis.Options{Addr: opt.Addr, Password: opt.Password})
	t.Cleanup(func() { _ = lockDB.Close() })

	token := randomHex()
	for {
		for db := 1; db < redisDBs; db++ {
			key := "rehook:test:lock:" + strconv.Itoa(db)
			got, err := lockDB.SetNX(ctx, key, token, 10*time.Minute).Result()
			if err != nil {
				t.Fatalf("lock a redis database at %s: %v", opt.Addr, err)
			}
			if !got {
				continue
			}
			c := redis.NewClient(&redis.Options{Addr: opt.Addr, Password: opt.Password, DB: db})
			if err := c.FlushDB(ctx).Err(); err != nil {
				t.Fatalf("flush redis db %d: %v", db, err)
			}
			_ = c.Close()
			t.Cleanup(func() {
				c := redis.NewClient(&redis.Options{Addr: opt.Addr, Password: opt.Password, DB: db})
				_ = c.FlushDB(context.Background()).Err()
				_ = c.Close()
				if v, _ := lockDB.Get(context.Background(), key).Result(); v == token {
					lockDB.Del(context.Background(), key)
				}
			})
			u := url.URL{Scheme: "redis", Host: opt.Addr, Path: "/" + strconv.Itoa(db)}
			if opt.Password != "" {
				u.User = url.UserPassword("", opt.Password)
			}
			return u.String()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no free redis database on %s", opt.Addr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DatabaseURL returns a database for the test alone: a fresh schema of the
// Postgres database at REHOOK_TEST_DATABASE_URL (dropped at cleanup), or a
// SQLite file in a temporary directory. The schema is not migrated.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("REHOOK_TEST_DATABASE_URL")
	if base == "" {
		return "sqlite:" + t.TempDir() + "/rehook.db"
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect REHOOK_TEST_DATABASE_URL: %v", err)
	}
	schema := "rehook_test_" + randomHex()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	_ = conn.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("REHOOK_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// UsingPostgres reports whether tests run against a real Postgres.
func UsingPostgres() bool { return os.Getenv("REHOOK_TEST_DATABASE_URL") != "" }

// UsingRedis reports whether tests run against a real Redis.
func UsingRedis() bool { return os.Getenv("REHOOK_TEST_REDIS_URL") != "" }

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Describe names the backends in use, for test logs.
func Describe() string {
	r, d := "miniredis", "sqlite"
	if UsingRedis() {
		r = "redis"
	}
	if UsingPostgres() {
		d = "postgres"
	}
	return fmt.Sprintf("%s + %s", r, d)
}
