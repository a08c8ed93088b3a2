package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
)

// redisURLForms is what REHOOK_REDIS_URL may hold, for error messages.
const redisURLForms = "want redis://, rediss://, redis-socket://, redis-sentinel:// " +
	"or redis-cluster:// (rediss-cluster:// with TLS)"

// parseRedisURL maps REHOOK_REDIS_URL onto asynq's connection options, which
// everything in rehook that talks to Redis is built from:
//
//   - redis://[[USER]:PASSWORD@]HOST:PORT[/DB] and rediss://... (TLS), and
//     redis-socket://[:PASSWORD@]/PATH[?db=DB], as asynq reads them: one
//     server (asynq.RedisClientOpt).
//   - redis-sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][/DB]
//     ?master=NAME[&sentinel_password=PASSWORD]: the master that the
//     sentinels name, followed across failovers
//     (asynq.RedisFailoverClientOpt). The user and password are the
//     master's; sentinel_password is the sentinels' own, when they have one.
//   - redis-cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...] and
//     rediss-cluster://... (TLS): a Redis Cluster reached through any of the
//     seed nodes listed (asynq.RedisClusterClientOpt). A cluster has no
//     database number.
//
// Errors name the scheme and the part at fault, never the password.
func parseRedisURL(raw string) (asynq.RedisConnOpt, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("no scheme; " + redisURLForms)
	}

	switch strings.ToLower(scheme) {
	case "redis", "rediss", "redis-socket":
		if _, err := url.Parse(raw); err != nil {
			return nil, fmt.Errorf("%s URL does not parse; %s", scheme, redisURLForms)
		}
		opt, err := asynq.ParseRedisURI(raw)
		if err != nil {
			return nil, fmt.Errorf("%s URL: %w", scheme, err)
		}
		return opt, nil
	case "redis-sentinel":
		return parseSentinelURL(raw)
	case "redis-cluster", "rediss-cluster":
		return parseClusterURL(raw)
	}
	return nil, fmt.Errorf("scheme %q is not supported; %s", scheme, redisURLForms)
}

// multiHostURL is a URL whose authority lists several HOST:PORT addresses.
type multiHostURL struct {
	scheme   string
	user     string
	password string
	addrs    []string
	db       int
	query    url.Values
}

// parseMultiHostURL splits SCHEME://[[USER]:PASSWORD@]HOST:PORT[,...][/DB][?QUERY].
// The host list is taken apart here, since net/url reads one host only.
func parseMultiHostURL(raw string) (multiHostURL, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	u := multiHostURL{scheme: strings.ToLower(scheme)}

	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	hosts := authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		hosts = authority[i+1:]
		// Let net/url decode the user information, on a placeholder host.
		info, err := url.Parse("x://" + authority[:i] + "@h")
		if err != nil || info.User == nil {
			return u, fmt.Errorf("%s URL: user information does not parse", scheme)
		}
		u.user = info.User.Username()
		u.password, _ = info.User.Password()
	}

	for _, a := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return u, fmt.Errorf("%s URL: address %q is not HOST:PORT", scheme, a)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return u, fmt.Errorf("%s URL: address %q has no valid port", scheme, a)
		}
		u.addrs = append(u.addrs, a)
	}

	path, query, _ := strings.Cut(tail, "?")
	if p := strings.Trim(path, "/"); p != "" {
		db, err := strconv.Atoi(p)
		if err != nil || db < 0 {
			return u, fmt.Errorf("%s URL: path %q is not a database number", scheme, path)
		}
		u.db = db
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return u, fmt.Errorf("%s URL: query does not parse", scheme)
	}
	u.query = q
	return u, nil
}

func parseSentinelURL(raw string) (asynq.RedisConnOpt, error) {
	u, err := parseMultiHostURL(raw)
	if err != nil {
		return nil, err
	}

	master := u.query.Get("master")
	if master == "" {
		return nil, errors.New("redis-sentinel URL: needs ?master=NAME, the master the " +
			"sentinels watch")
	}
	for k := range u.query {
		if k != "master" && k != "sentinel_password" {
			return nil, fmt.Errorf("redis-sentinel URL: unknown parameter %q", k)
		}
	}
	return asynq.RedisFailoverClientOpt{
		MasterName:       master,
		SentinelAddrs:    u.addrs,
		SentinelPassword: u.query.Get("sentinel_password"),
		Username:         u.user,
		Password:         u.password,
		DB:               u.db,
	}, nil
}

func parseClusterURL(raw string) (asynq.RedisConnOpt, error) {
	u, err := parseMultiHostURL(raw)
	if err != nil {
		return nil, err
	}

	if u.db != 0 {
		return nil, fmt.Errorf("%s URL: a cluster has database 0 only, not %d", u.scheme, u.db)
	}
	if len(u.query) > 0 {
		return nil, fmt.Errorf("%s URL: takes no parameters", u.scheme)
	}
	opt := asynq.RedisClusterClientOpt{Addrs: u.addrs, Username: u.user, Password: u.password}
	if u.scheme == "rediss-cluster" {
		host, _, _ := net.SplitHostPort(u.addrs[0])
		opt.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return opt, nil
}
