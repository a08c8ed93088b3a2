package api

import (
	"time"

	"github.com/gin-gonic/gin"
)

// routeUnmatched names requests that matched no route in metrics.
const routeUnmatched = "unmatched"

// countRequest counts every request in the metrics once it is answered, by
// the route's name (see routes), and a 2xx retrigger as an accepted one.
func (a *API) countRequest(c *gin.Context) {
	if a.cfg.Metrics == nil {
		c.Next()
		return
	}
	start := time.Now()
	c.Next()

	route := routeName(c)
	status := c.Writer.Status()
	a.cfg.Metrics.APIRequest(route, status, time.Since(start))
	if route == "retrigger" && status >= 200 && status < 300 {
		a.cfg.Metrics.RetriggerAccepted()
	}
}

// routeName is the name dispatch gave the request's route, else gin's route
// pattern, else routeUnmatched: a bounded set, fit for a metric label.
func routeName(c *gin.Context) string {
	if name := c.GetString("route"); name != "" {
		return name
	}
	if p := c.FullPath(); p != "" {
		return p
	}
	return routeUnmatched
}
