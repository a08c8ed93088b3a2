package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/rehook/rehook/store"
)

// keyPrefixLen is how many hex digits of a key's hash index it in the store.
const keyPrefixLen = 16

// NewAPIKey returns a fresh random key and its stored form. The key is shown
// once; only its hash is kept.
func NewAPIKey(scope store.Scope, role store.Role) (string, store.APIKey, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", store.APIKey{}, err
	}
	plain := "rhk_" + hex.EncodeToString(raw)
	return plain, StoredKey(plain, scope, role), nil
}

// StoredKey is the stored form of a given key: the lookup prefix and hash.
func StoredKey(plain string, scope store.Scope, role store.Role) store.APIKey {
	sum := sha256.Sum256([]byte(plain))
	return store.APIKey{
		Prefix: hex.EncodeToString(sum[:])[:keyPrefixLen],
		Hash:   sum[:],
		Scope:  scope,
		Role:   role,
	}
}

// EnsureAPIKey stores plain as a key unless a key with its hash is already
// stored; it is how `rehook dev` installs REHOOK_DEV_API_KEY.
func EnsureAPIKey(ctx context.Context, s store.Store, plain string, scope store.Scope,
	role store.Role) error {
	want := StoredKey(plain, scope, role)
	have, err := s.GetAPIKeyByPrefix(ctx, want.Prefix)
	if err == nil && have.Revoked.IsZero() && subtle.ConstantTimeCompare(have.Hash, want.Hash) == 1 {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil {
		return errors.New("a different or revoked key shares this key's prefix; choose another key")
	}
	return s.CreateAPIKey(ctx, &want)
}

type ctxKey int

const keyCtx ctxKey = 0

// authenticate resolves x-api-key into a stored key, or answers 401.
func (a *API) authenticate(c *gin.Context) {
	plain := c.GetHeader("x-api-key")
	if plain == "" {
		abort(c, newError(http.StatusUnauthorized, "missing x-api-key header"))
		return
	}

	want := StoredKey(plain, store.Scope{}, "")
	have, err := a.store.GetAPIKeyByPrefix(c.Request.Context(), want.Prefix)
	if errors.Is(err, store.ErrNotFound) {
		abort(c, newError(http.StatusUnauthorized, "unknown or revoked API key"))
		return
	}
	if err != nil {
		abort(c, err)
		return
	}
	if subtle.ConstantTimeCompare(have.Hash, want.Hash) != 1 || !have.Revoked.IsZero() {
		abort(c, newError(http.StatusUnauthorized, "unknown or revoked API key"))
		return
	}
	c.Set("api_key_id", have.ID)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), keyCtx, have))
	c.Next()
}

// authorize checks that the caller's key covers scope with at least role
// need. It answers from the path alone, before any lookup, so a refusal says
// nothing about whether the object exists.
func authorize(c *gin.Context, scope store.Scope, need store.Role) error {
	key, _ := c.Request.Context().Value(keyCtx).(store.APIKey)
	if !key.Scope.Covers(scope) {
		return newError(http.StatusForbidden, "API key is not valid for this scope")
	}
	if !key.Role.Allows(need) {
		return newError(http.StatusForbidden, "API key role "+string(key.Role)+
			" may not do this; it needs "+string(need))
	}
	return nil
}
