package admin

import (
	"bytes"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// dashboardCSP keeps a browser showing the dashboard on the admin listener:
// scripts, styles, images and API calls come from it alone. The inline
// parts are asynqmon's (its bootstrap script, its generated styles).
const dashboardCSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; " +
	"style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"

// externalLink matches a <link> tag whose href is on another host, such as
// the web fonts asynqmon's page asks a font CDN for.
var externalLink = regexp.MustCompile(`<link[^>]*\shref="(?:https?:)?//[^"]*"[^>]*>`)

// selfContained serves the dashboard so that it loads nothing from another
// host: every answer carries dashboardCSP, and the page itself loses its
// links to other hosts (the dashboard then uses the browser's own fonts).
// Static files and the JSON API pass through untouched.
func selfContained(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", dashboardCSP)
		if !servesPage(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}

		rec := &pageRecorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		if strings.HasPrefix(http.DetectContentType(body), "text/html") {
			body = externalLink.ReplaceAll(body, nil)
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
	})
}

// servesPage reports whether asynqmon answers path with its HTML page: any
// path but its JSON API and its static files.
func servesPage(path string) bool {
	rest := strings.TrimPrefix(path, DashboardPath)
	if strings.HasPrefix(rest, "/api/") || strings.HasPrefix(rest, "/static/") {
		return false
	}
	last := rest[strings.LastIndex(rest, "/")+1:]
	return !strings.Contains(last, ".")
}

// redisInfo answers the dashboard's Redis page from Config.RedisInfo, in the
// shape asynqmon gives it.
func (h *Handler) redisInfo(w http.ResponseWriter, _ *http.Request) {
	addr, raw := h.cfg.RedisInfo()
	info := map[string]string{}
	for _, line := range strings.Split(raw, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(k, "#") {
			info[k] = v
		}
	}
	w.Header().Set("Content-Security-Policy", dashboardCSP)
	writeJSON(w, http.StatusOK, map[string]any{
		"address": addr, "info": info, "raw_info": raw, "cluster": false,
	})
}

// pageRecorder holds a page's answer so it can be rewritten.
type pageRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (p *pageRecorder) Header() http.Header         { return p.header }
func (p *pageRecorder) WriteHeader(status int)      { p.status = status }
func (p *pageRecorder) Write(b []byte) (int, error) { return p.body.Write(b) }
