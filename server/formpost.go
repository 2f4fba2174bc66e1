package server

import (
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"sort"

	"github.com/labstack/echo/v4"
)

// formPostPage answers response_mode=form_post (OAuth 2.0 Form Post
// Response Mode): a page whose only act is to POST the parameters to the
// client's redirect URI. It runs one inline script, allowed by a per-response
// nonce, and its CSP lets the form go nowhere but the redirect URI's origin.
var formPostPage = template.Must(template.New("form_post").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Signing you in</title></head>
<body><form method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><p>Your browser does not run scripts: continue by hand.</p><button type="submit">Continue</button></noscript>
</form>
<script nonce="{{.Nonce}}">document.forms[0].submit();</script>
</body></html>
`))

type formField struct{ Name, Value string }

// writeFormPost writes the auto-submitting page for params to redirect.
func writeFormPost(c echo.Context, redirect *url.URL, params url.Values) error {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	n := base64.RawURLEncoding.EncodeToString(nonce)
	fields := make([]formField, 0, len(params))
	for k, vs := range params {
		for _, v := range vs {
			fields = append(fields, formField{k, v})
		}
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].Name < fields[j].Name })
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+n+"'; form-action "+formAction(redirect)+
		"; frame-ancestors 'none'; base-uri 'none'")
	c.Response().WriteHeader(http.StatusOK)
	return formPostPage.Execute(c.Response(), struct {
		Action string
		Fields []formField
		Nonce  string
	}{redirect.String(), fields, n})
}

// formAction is the CSP source for the redirect URI: its origin, or its
// scheme alone for a private-use scheme, which has no host.
func formAction(u *url.URL) string {
	if u.Host == "" {
		return u.Scheme + ":"
	}
	return u.Scheme + "://" + u.Host
}
