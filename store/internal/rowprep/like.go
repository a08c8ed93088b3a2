package rowprep

import "strings"

// likeEscaper escapes the LIKE wildcards and the escape character itself.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ContainsPattern is a LIKE pattern, with backslash as the escape
// character, that matches any text containing s as it is.
func ContainsPattern(s string) string {
	return "%" + likeEscaper.Replace(s) + "%"
}
