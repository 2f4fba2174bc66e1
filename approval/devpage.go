package approval

import (
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"
)

// DevPagePath is the built-in consent page, served only when no
// approval_url is configured.
const DevPagePath = "/dev/consent"

// RegisterDevPage mounts the development consent page. It decides through
// Approve and Deny, the same code path as the REST API.
func (s *Service) RegisterDevPage(e *echo.Echo) {
	e.GET(DevPagePath, s.devPage)
	e.POST(DevPagePath, s.devDecide)
}

var devTmpl = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Latch development consent</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222}
.warn{background:#fff3cd;border:1px solid #e0c36a;padding:.6rem .8rem;border-radius:6px}
.err{background:#fde2e1;border:1px solid #e39a96;padding:.6rem .8rem;border-radius:6px}
label{display:block;margin:.4rem 0}
input[type=text]{width:100%;padding:.4rem;font-size:1rem}
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}
</style></head><body>
<p class="warn"><strong>Development only.</strong> This page is built into Latch because no
<code>approval_url</code> is configured. It does not authenticate anyone: in production your
app signs the user in and approves through the API.</p>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
{{with .View}}
<h1>Sign in to {{if .Client.ClientName}}{{.Client.ClientName}}{{else}}{{.Client.ClientID}}{{end}}</h1>
<p class="redirect">You will be sent back to <strong>{{.RedirectHost}}</strong>{{if .RedirectLoopback}} (an application on this computer){{end}}: <code>{{.RedirectURI}}</code></p>
{{if .MaxAge}}<p>The application asks that you signed in within the last {{.MaxAge}} seconds.</p>{{end}}
{{if .Resources}}<p>For: {{range .Resources}}<code>{{.}}</code> {{end}}</p>{{end}}
<form method="post" action="{{$.Path}}">
<input type="hidden" name="token" value="{{.ID}}">
<label>User id (the subject the client will see)
<input type="text" name="user" value="{{.User}}" required autofocus></label>
<p>The application asks for:</p>
{{range .Scopes}}<label><input type="checkbox" name="scope" value="{{.Name}}" checked> <strong>{{.Name}}</strong> — {{.Description}}</label>{{end}}
{{if .ResourceDetails}}<p>For use at:</p><ul>{{range .ResourceDetails}}<li><strong>{{.Name}}</strong> ({{.URI}})</li>{{end}}</ul>{{end}}
<label>Email claim (optional) <input type="text" name="email" value=""></label>
<label>Name claim (optional) <input type="text" name="name" value=""></label>
<label><input type="checkbox" name="remember" value="1"> Remember this decision</label>
<p><button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></p>
</form>
{{end}}
</body></html>`))

type devData struct {
	View  *View
	Error string
	Path  string
}

func (s *Service) renderDev(c echo.Context, status int, d devData) error {
	d.Path = DevPagePath
	c.Response().Header().Set("Content-Type", "text/html; charset=utf-8")
	c.Response().WriteHeader(status)
	return devTmpl.Execute(c.Response(), d)
}

func (s *Service) devPage(c echo.Context) error {
	v, err := s.View(c.Request().Context(), c.QueryParam("token"))
	if err != nil {
		return s.renderDevError(c, err)
	}
	return s.renderDev(c, http.StatusOK, devData{View: v})
}

func (s *Service) devDecide(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.FormValue("token")
	var (
		next string
		err  error
	)
	if c.FormValue("decision") == "approve" {
		form, _ := c.FormParams()
		granted := form["scope"]
		if granted == nil {
			granted = []string{}
		}
		claims := map[string]any{}
		if v := c.FormValue("email"); v != "" {
			claims["email"] = v
			claims["email_verified"] = false
		}
		if v := c.FormValue("name"); v != "" {
			claims["name"] = v
		}
		// Whoever clicks here has just "authenticated", which also
		// satisfies any max_age.
		now := s.now().Unix()
		next, err = s.Approve(ctx, id, ApproveRequest{
			User: c.FormValue("user"), Scopes: &granted, Claims: claims, Remember: c.FormValue("remember") == "1",
			AuthTime: &now,
		})
	} else {
		next, err = s.Deny(ctx, id, DenyRequest{ErrorDescription: "The user denied the request."})
	}
	if err != nil {
		return s.renderDevError(c, err)
	}
	return c.Redirect(http.StatusSeeOther, next)
}

func (s *Service) renderDevError(c echo.Context, err error) error {
	status, msg := http.StatusInternalServerError, "Something went wrong."
	if e, ok := asAPIError(err); ok {
		status, msg = e.Status, e.Description
	}
	return s.renderDev(c, status, devData{Error: msg})
}
