package api

import (
	"errors"
	"net/http"
	"regexp"

	"github.com/gin-gonic/gin"

	"github.com/rehook/rehook/store"
)

type createRegistryRequest struct {
	Identifier  string `json:"identifier"`
	PackageType string `json:"packageType"`
	Description string `json:"description"`
}

var packageTypePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,31}$`)

// createRegistry is POST /registry?space_ref=ACCOUNT[/ORG[/PROJECT]].
func (a *API) createRegistry(c *gin.Context) {
	scope, err := parseScope(c.Query("space_ref"))
	if err != nil {
		abort(c, invalid("space_ref", "must be account[/org[/project]]", c.Query("space_ref")))
		return
	}
	if err := authorize(c, scope, store.RoleAdmin); err != nil {
		abort(c, err)
		return
	}

	var req createRegistryRequest
	if err := decodeJSON(c, a.cfg.BodyLimit, &req); err != nil {
		abort(c, err)
		return
	}
	if !identifierPattern.MatchString(req.Identifier) {
		abort(c, invalid("identifier", "must match "+identifierPattern.String(), req.Identifier))
		return
	}
	if req.PackageType == "" {
		req.PackageType = "DOCKER"
	}
	if !packageTypePattern.MatchString(req.PackageType) {
		abort(c, invalid("packageType", "must match "+packageTypePattern.String(), req.PackageType))
		return
	}
	if len(req.Description) > 1024 {
		abort(c, invalid("description", "at most 1024 bytes", req.Description))
		return
	}

	reg := store.Registry{
		Scope:       scope,
		Identifier:  req.Identifier,
		PackageType: req.PackageType,
		Description: req.Description,
	}
	err = a.store.CreateRegistry(c.Request.Context(), &reg)
	if errors.Is(err, store.ErrConflict) {
		abort(c, &apiError{status: http.StatusConflict, message: "registry already exists",
			details: &errorDetails{Field: "identifier", Reason: "taken in this scope",
				Value: req.Identifier}})
		return
	}
	if err != nil {
		abort(c, err)
		return
	}
	ok(c, http.StatusCreated, toRegistryJSON(reg))
}

// loadRegistry finds the registry a ref names, or a 404 that says which.
func (a *API) loadRegistry(c *gin.Context, ref RegistryRef) (store.Registry, error) {
	reg, err := a.store.GetRegistry(c.Request.Context(), ref.Scope, ref.Identifier)
	if errors.Is(err, store.ErrNotFound) {
		return reg, &apiError{status: http.StatusNotFound, message: "registry not found",
			details: &errorDetails{Field: "registry_ref",
				Reason: "no such registry in this scope", Value: ref.String()}}
	}
	return reg, err
}

func (a *API) getRegistry(c *gin.Context, ref RegistryRef, _ []string) error {
	reg, err := a.loadRegistry(c, ref)
	if err != nil {
		return err
	}
	ok(c, http.StatusOK, toRegistryJSON(reg))
	return nil
}

func (a *API) deleteRegistry(c *gin.Context, ref RegistryRef, _ []string) error {
	reg, err := a.loadRegistry(c, ref)
	if err != nil {
		return err
	}
	if err := a.store.DeleteRegistry(c.Request.Context(), reg.ID); err != nil {
		return err
	}
	ok(c, http.StatusOK, nil)
	return nil
}
