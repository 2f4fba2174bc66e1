package resource

import (
	"net/url"
	"strings"
)

// sameURL compares scheme, host and path (RFC 9449 §4.3 item 9, with the
// RFC 3986 §6.2.2-§6.2.3 normalisation of case and default ports).
func sameURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil || !ua.IsAbs() || ua.Host == "" || ub.Host == "" {
		return false
	}
	return normURL(ua) == normURL(ub)
}

func normURL(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	return scheme + "://" + host + p
}
