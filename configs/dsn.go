package configs

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// dsnPassword finds password=... in a keyword/value connection string:
// a single-quoted value (with \' and \\ escapes) or a bare word.
var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactDSN replaces the password in a connection string (postgres:// URL
// or keyword/value) with "<redacted>". A URL that does not parse is
// redacted whole: it might hold a password nobody can find.
func RedactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if isURLDSN(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return redacted
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return strings.Replace(u.String(), ":xxxxx@", ":"+redacted+"@", 1)
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
			return strings.Replace(u.String(), "password=xxxxx", "password="+redacted, 1)
		}
		return dsn
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}"+redacted)
}

func isURLDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// checkDSN is a light syntax check (the driver's parse happens at
// start): a URL must parse, keyword/value text must contain keywords.
// The message never quotes the string (it may hold a password).
func checkDSN(dsn string) error {
	if isURLDSN(dsn) {
		if _, err := url.Parse(dsn); err != nil {
			return errors.New("not a valid postgres:// URL (contents not shown: it may hold a password)")
		}
		return nil
	}
	if !strings.Contains(dsn, "=") {
		return errors.New("neither a postgres:// URL nor keyword=value pairs (contents not shown: it may hold a password)")
	}
	return nil
}
