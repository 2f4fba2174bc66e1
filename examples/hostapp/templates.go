package hostapp

import (
	"html/template"
	"net/http"
	"strings"
)

func render(w http.ResponseWriter, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = t.Execute(w, data)
}

const layout = `<!doctype html><html><head><meta charset=utf-8><title>{{.Name}}</title>
<meta name=viewport content="width=device-width, initial-scale=1">
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
header{background:#2f4bd6;color:#fff;padding:.8rem 1.5rem;font-weight:600;display:flex;justify-content:space-between}
header a,header button{color:#fff}
main{max-width:30rem;margin:2rem auto;background:#fff;border-radius:12px;box-shadow:0 2px 10px #0002;padding:1.5rem 2rem}
h1{font-size:1.3rem;margin:.2rem 0 1rem}
.logo{width:56px;height:56px;border-radius:12px;display:flex;align-items:center;justify-content:center;background:#e8613c;color:#fff;font-size:28px;font-weight:700;margin:0 auto .5rem}
img.logo{object-fit:cover;background:none}
ul.scopes{list-style:none;padding:0}ul.scopes li{padding:.45rem 0;border-bottom:1px solid #eee}
ul.scopes b{display:block}
.muted{color:#667;font-size:.9rem}
.buttons{display:flex;gap:.8rem;margin-top:1.2rem}
button{font:inherit;padding:.55rem 1.2rem;border-radius:8px;border:1px solid #2f4bd6;cursor:pointer}
button.primary{background:#2f4bd6;color:#fff}button.secondary{background:#fff;color:#2f4bd6}
input[type=text],input[type=password]{font:inherit;width:100%;padding:.45rem;margin:.2rem 0 .8rem;box-sizing:border-box}
.error{color:#b00020}
form.inline{display:inline}
</style></head><body><header><span>{{.Name}}</span>{{if .User}}<span>{{.User.Name}} ·
<form class=inline method=post action=/logout><button id=logout class=secondary style="padding:.1rem .6rem">Log out</button></form></span>{{end}}</header>
<main>{{template "body" .}}</main></body></html>`

func page(body string) *template.Template {
	funcs := template.FuncMap{"join": func(s []string) string { return strings.Join(s, ", ") }}
	return template.Must(template.Must(template.New("layout").Funcs(funcs).Parse(layout)).New("body").Parse(body)).Lookup("layout")
}

var homeTmpl = page(`{{if .User}}<h1>Welcome back, {{.User.Name}}</h1>
<p><a id=connected href=/connected>Connected apps</a></p>{{else}}<h1>Welcome to {{.Name}}</h1><p><a href=/login>Log in</a></p>{{end}}`)

var loginTmpl = page(`<h1>Log in to {{.Name}}</h1>{{with .Error}}<p class=error id=login-error>{{.}}</p>{{end}}
<form method=post action=/login><input type=hidden name=next value="{{.Next}}">
<label>Username<input type=text id=username name=username autocomplete=username autofocus></label>
<label>Password<input type=password id=password name=password autocomplete=current-password></label>
<button class=primary id=login>Log in</button></form>
<p class=muted>Demo accounts: alice / wonderland, bob / builder</p>`)

var consentTmpl = page(`{{if .S.Client.LogoURI}}<img class=logo src="{{.S.Client.LogoURI}}" alt="">{{else}}<div class=logo>{{.Initial}}</div>{{end}}
<h1 style="text-align:center"><span id=client-name>{{or .S.Client.ClientName .S.Client.ClientID}}</span> wants to access your {{.Name}} account</h1>
<p class=muted>Signed in as <b>{{.User.Name}}</b> ({{.User.Email}})</p>
<p>This will allow it to:</p>
<ul class=scopes id=scopes>{{range .S.Scopes}}<li><b>{{.Name}}</b><span class=muted>{{.Description}}</span></li>{{end}}</ul>
{{if .S.RedirectHost}}<p class=muted id=redirect-host>After you decide, you will be sent to <b>{{.S.RedirectHost}}</b>{{if .S.RedirectLoopback}} (an app on this computer){{end}}.</p>{{end}}
{{if .S.Client.ClientIDDocument}}<p class=muted>This app identifies itself by <b>{{.S.Client.ClientID}}</b>; it is not registered with {{.Name}}.</p>{{end}}
{{with .S.Client.PolicyURI}}<p class=muted><a href="{{.}}">Privacy policy</a></p>{{end}}
<form method=post><input type=hidden name=token value="{{.S.ID}}">
<label><input type=checkbox id=remember name=remember> Remember this decision</label>
<div class=buttons><button class=primary id=approve name=decision value=approve>Allow</button>
<button class=secondary id=deny name=decision value=deny>Deny</button></div></form>`)

var connectedTmpl = page(`<h1>Connected apps</h1>{{if not .Apps}}<p id=no-apps>No app has access to your account.</p>{{end}}
<ul class=scopes id=apps>{{range .Apps}}<li>{{if .Logo}}<img class=logo src="{{.Logo}}" alt="" style="width:32px;height:32px;display:inline-block">{{end}}<b class=app-name>{{.Name}}</b>
<span class=muted>{{join .Scopes}} · since {{.Since.Format "2 Jan 2006"}}</span>
<form class=inline method=post action=/connected/revoke><input type=hidden name=client_id value="{{.ClientID}}"><button class="secondary revoke">Remove access</button></form></li>{{end}}</ul>
<p><a href=/>Home</a></p>`)

var errorTmpl = page(`<h1>Sorry</h1><p id=message>{{.Message}}</p>`)
