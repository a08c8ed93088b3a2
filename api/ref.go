package api

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/rehook/rehook/store"
)

// RegistryRef names a registry: its scope and its identifier.
type RegistryRef struct {
	Scope      store.Scope
	Identifier string
}

// String is the raw form, "acct/org/proj/reg/+".
func (r RegistryRef) String() string {
	return r.Scope.String() + "/" + r.Identifier + "/+"
}

// identifierPattern is what an account, org, project or registry
// identifier may look like.
var identifierPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// splitRegistryPath splits the escaped path after /registry/ into the
// registry ref and the rest of the path, as unescaped segments. It accepts
// the raw form, "a/o/p/reg/+/webhooks/...", and the fully percent-encoded
// form, "a%2Fo%2Fp%2Freg%2F%2B/webhooks/..." (with or without the encoded
// "/+"). The raw form must carry its "/+": the slashes of the ref are real
// path separators, and only the "+" tells where the ref ends. No route has a
// "+" segment, so one after the ref is a malformed ref, such as a ref half
// encoded, "a%2Fo/p/reg/+/webhooks", or ended twice, "a/o/p/reg/+/+".
func splitRegistryPath(escaped string) (RegistryRef, []string, error) {
	segs := strings.Split(escaped, "/")

	var refParts, rest []string
	if first := segs[0]; strings.Contains(strings.ToLower(first), "%2f") {
		decoded, err := url.PathUnescape(first)
		if err != nil {
			return RegistryRef{}, nil, invalid("registry_ref", "malformed percent-encoding", first)
		}
		refParts = strings.Split(strings.TrimSuffix(decoded, "/+"), "/")
		rest = segs[1:]
	} else {
		plus := -1
		for i, s := range segs {
			if s == "+" || strings.EqualFold(s, "%2B") {
				plus = i
				break
			}
		}
		if plus < 0 {
			return RegistryRef{}, nil, invalid("registry_ref",
				"must end in /+ (account[/org[/project]]/registry/+)", escaped)
		}
		refParts = make([]string, plus)
		for i, s := range segs[:plus] {
			u, err := url.PathUnescape(s)
			if err != nil {
				return RegistryRef{}, nil, invalid("registry_ref", "malformed percent-encoding", s)
			}
			refParts[i] = u
		}
		rest = segs[plus+1:]
	}

	ref, err := parseRefParts(refParts)
	if err != nil {
		return RegistryRef{}, nil, err
	}
	for i, s := range rest {
		u, err := url.PathUnescape(s)
		if err != nil {
			return RegistryRef{}, nil, invalid("path", "malformed percent-encoding", s)
		}
		if u == "+" {
			return RegistryRef{}, nil, invalid("registry_ref",
				"must be given once, raw (account/org/project/registry/+) or wholly "+
					"percent-encoded, and end at its first /+", escaped)
		}
		rest[i] = u
	}
	if len(rest) > 0 && rest[len(rest)-1] == "" {
		rest = rest[:len(rest)-1]
	}
	return ref, rest, nil
}

func parseRefParts(parts []string) (RegistryRef, error) {
	joined := strings.Join(parts, "/")
	if len(parts) < 2 || len(parts) > 4 {
		return RegistryRef{}, invalid("registry_ref",
			"must be account[/org[/project]]/registry/+", joined)
	}
	for _, p := range parts {
		if !identifierPattern.MatchString(p) {
			return RegistryRef{}, invalid("registry_ref",
				"each segment must match "+identifierPattern.String(), joined)
		}
	}
	scope, err := parseScope(strings.Join(parts[:len(parts)-1], "/"))
	if err != nil {
		return RegistryRef{}, invalid("registry_ref", err.Error(), joined)
	}
	return RegistryRef{Scope: scope, Identifier: parts[len(parts)-1]}, nil
}

// ParseScope parses "account[/org[/project]]"; "*" is the all-accounts
// scope that only API keys may have.
func ParseScope(s string) (store.Scope, error) {
	if s == "*" {
		return store.Scope{}, nil
	}
	return parseScope(s)
}

func parseScope(s string) (store.Scope, error) {
	parts := strings.Split(s, "/")
	if len(parts) > 3 || s == "" {
		return store.Scope{}, invalid("scope", "must be account[/org[/project]]", s)
	}
	for _, p := range parts {
		if !identifierPattern.MatchString(p) {
			return store.Scope{}, invalid("scope",
				"each segment must match "+identifierPattern.String(), s)
		}
	}
	var sc store.Scope
	sc.Account = parts[0]
	if len(parts) > 1 {
		sc.Org = parts[1]
	}
	if len(parts) > 2 {
		sc.Project = parts[2]
	}
	return sc, nil
}
