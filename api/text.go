package api

import (
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// validText reports whether s is text every store can keep: valid UTF-8
// without NUL bytes.
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// badText is the refusal of a value that is not valid text.
func badText(field, value string) *apiError {
	return invalid(field, "must be valid UTF-8 without NUL bytes",
		strings.ToValidUTF8(strings.ReplaceAll(value, "\x00", "\\0"), "\uFFFD"))
}

// checkText refuses a request whose path or query holds a value that is not
// valid text, before any of it reaches a lookup.
func checkText(c *gin.Context) {
	if !validText(c.Request.URL.Path) {
		abort(c, badText("path", c.Request.URL.Path))
		return
	}
	for name, values := range c.Request.URL.Query() {
		if !validText(name) {
			abort(c, badText("query", name))
			return
		}
		for _, v := range values {
			if !validText(v) {
				abort(c, badText(name, v))
				return
			}
		}
	}
	c.Next()
}

// findBadText walks a decoded request body and returns the JSON path of the
// first string that is not valid text, or "" when every string is.
func findBadText(v any) (string, string) {
	return walkText(reflect.ValueOf(v), "")
}

func walkText(v reflect.Value, path string) (string, string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", ""
		}
		return walkText(v.Elem(), path)
	case reflect.String:
		if !validText(v.String()) {
			return path, v.String()
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if p, bad := walkText(v.Index(i), path); p != "" {
				return p, bad
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			if p, bad := walkText(iter.Key(), path); p != "" {
				return p, bad
			}
			if p, bad := walkText(iter.Value(), path); p != "" {
				return p, bad
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if path != "" {
				name = path + "." + name
			}
			if p, bad := walkText(v.Field(i), name); p != "" {
				return p, bad
			}
		}
	}
	return "", ""
}
