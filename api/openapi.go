package api

import (
	"bytes"
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDocument describes every route of the API and of the admin
// listener; it is served at Prefix + "/openapi.yaml".
//
//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPIDocument returns the OpenAPI 3 document of the API and the admin
// listener.
func OpenAPIDocument() []byte { return bytes.Clone(openAPIDocument) }

// serveOpenAPI is GET /openapi.yaml. It needs no API key: the document is
// the same for everyone and says nothing about the data.
func (a *API) serveOpenAPI(c *gin.Context) {
	c.Set("route", "openapi")
	c.Data(http.StatusOK, "application/yaml", openAPIDocument)
}
