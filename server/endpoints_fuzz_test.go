package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchhq/latch/latchtest"
)

// fuzzEnv is one real Latch (SQLite) with a confidential and a public
// client; fuzz inputs name them as CLIENT and PUBLIC so seeds reach past
// client lookup.
func fuzzEnv(f *testing.F) (*latchtest.Env, func(string) string, latchtest.Client) {
	env := latchtest.Start(f, latchtest.Options{})
	web := env.WebClient("client_secret_basic")
	native := env.NativeClient()
	ids := strings.NewReplacer("CLIENT", web.ID, "PUBLIC", native.ID)
	return env, ids.Replace, web
}

// serve runs one request through the server's real handler (routing,
// middleware, recover) and fails on a 5xx: bad input must get a 4xx or a
// redirect, never a server error, and a panic surfaces here as a 500.
func serve(t *testing.T, env *latchtest.Env, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	env.Server.Handler().ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %s?%s: %d %s", req.Method, req.URL.Path, req.URL.RawQuery, rec.Code, rec.Body.String())
	}
	return rec
}

func FuzzAuthorizeQuery(f *testing.F) {
	env, ids, _ := fuzzEnv(f)
	valid := "response_type=code&client_id=CLIENT&redirect_uri=https%3A%2F%2Fclient.example%2Fcb&scope=openid+offline_access" +
		"&state=state-123456&nonce=nonce-123456&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
	for _, seed := range []string{
		valid,
		valid + "&prompt=none",
		valid + "&prompt=none+login",
		valid + "&max_age=-1&id_token_hint=x.y.z&acr_values=%00",
		valid + "&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Anope",
		valid + "&request=eyJhbGciOiJub25lIn0.e30.",
		valid + "&dpop_jkt=%ff%fe",
		valid + "&scope=openid&scope=profile",
		"response_type=code&client_id=PUBLIC&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&code_challenge=abc&code_challenge_method=plain",
		"response_type=token&client_id=CLIENT",
		"client_id=%00",
		"client_id=nope&redirect_uri=https://evil.example/",
		"%zz=%",
		"",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	// The valid seed must reach the approval page, or the corpus never
	// gets past client and PKCE checks.
	rec := httptest.NewRecorder()
	env.Server.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/oauth2/authorize?"+ids(valid), nil))
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), latchtest.ApprovalURL) {
		f.Fatalf("the valid seed did not reach the approval page: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	f.Fuzz(func(t *testing.T, query string, post bool) {
		query = ids(query)
		req := httptest.NewRequest("GET", "/oauth2/authorize", nil)
		req.URL.RawQuery = query
		if post {
			req = httptest.NewRequest("POST", "/oauth2/authorize", strings.NewReader(query))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := serve(t, env, req)
		// A redirect goes to the approval page or the registered redirect
		// URI, nowhere else.
		if loc := rec.Header().Get("Location"); loc != "" {
			if !strings.HasPrefix(loc, latchtest.ApprovalURL) && !strings.HasPrefix(loc, "https://client.example/cb") &&
				!strings.HasPrefix(loc, "http://127.0.0.1:9/callback") {
				t.Fatalf("authorize %q redirected to %s", query, loc)
			}
		}
	})
}

func FuzzTokenForm(f *testing.F) {
	env, ids, web := fuzzEnv(f)
	for _, seed := range []string{
		"grant_type=authorization_code&code=abc.def&redirect_uri=https%3A%2F%2Fclient.example%2Fcb&code_verifier=" + strings.Repeat("v", 43),
		"grant_type=refresh_token&refresh_token=latch_rt.abc",
		"grant_type=refresh_token&refresh_token=abc&scope=openid+admin",
		"grant_type=client_credentials&scope=profile",
		"grant_type=client_credentials&audience=https%3A%2F%2Fother.example",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=x.y.z",
		"grant_type=authorization_code&client_id=PUBLIC&code=x&code_verifier=%00",
		"client_id=CLIENT&client_secret=wrong&grant_type=client_credentials",
		"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=e30.e30.&grant_type=client_credentials",
		"grant_type=password&username=a&password=b",
		"%zz",
		"",
	} {
		f.Add(seed, true, "")
		f.Add(seed, false, "")
	}
	f.Add("grant_type=client_credentials", true, "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2In0.e30.sig")
	f.Fuzz(func(t *testing.T, form string, basic bool, dpop string) {
		req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(ids(form)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(url.QueryEscape(web.ID), url.QueryEscape(web.Secret))
		}
		if dpop != "" {
			req.Header.Set("DPoP", dpop)
		}
		rec := serve(t, env, req)
		if rec.Code != http.StatusOK && !strings.Contains(rec.Body.String(), `"error"`) {
			t.Fatalf("token %q: %d without an OAuth error body: %s", form, rec.Code, rec.Body.String())
		}
	})
}

// FuzzApprovalJSON sends host-app decisions through the approval API for a
// fresh pending sign-in each time, and on a 200 follows the browser back
// through resume: no body may produce a 5xx on either side.
func FuzzApprovalJSON(f *testing.F) {
	env, ids, _ := fuzzEnv(f)
	authorize := ids("/oauth2/authorize?response_type=code&client_id=CLIENT&redirect_uri=https%3A%2F%2Fclient.example%2Fcb" +
		"&scope=openid+profile+offline_access&state=state-123456&nonce=nonce-123456" +
		"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
	for _, seed := range []string{
		`{"user":"alice"}`,
		`{"user":"alice","scopes":["openid"],"remember":true,"auth_time":1700000000,"acr":"urn:mace:incommon:iap:silver"}`,
		`{"user":"alice","claims":{"email":"a@example.com","name":"A","nested":{"x":[1,2,{"y":null}]},"sub":"override"}}`,
		`{"user":"alice","scopes":["admin"]}`,
		`{"user":"alice","scopes":[]}`,
		`{"user":"alice","auth_time":-1}`,
		`{"user":"alice","auth_time":99999999999999}`,
		`{"user":"\u0000\ud800"}`,
		`{"user":" "}`,
		`{"user":"alice","claims":{"email_verified":"yes","updated_at":1e308}}`,
		`{"user":"alice","extra":1}`,
		`{"user":["alice"]}`,
		`{"user":"alice"} trailing`,
		`null`, `{}`, ``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		rec := serve(t, env, httptest.NewRequest("GET", authorize, nil))
		loc, err := url.Parse(rec.Header().Get("Location"))
		if rec.Code != http.StatusSeeOther || err != nil || loc.Query().Get("token") == "" {
			t.Fatalf("authorize: %d %s", rec.Code, rec.Header().Get("Location"))
		}
		cookies := rec.Result().Cookies()
		req := httptest.NewRequest("POST", "/api/auth_session/"+loc.Query().Get("token")+"/approve", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", latchtest.APIKey)
		rec = serve(t, env, req)
		if rec.Code != http.StatusOK {
			if !strings.Contains(rec.Body.String(), `"error"`) {
				t.Fatalf("approve %q: %d without an error body", body, rec.Code)
			}
			return
		}
		var out struct {
			RedirectURI string `json:"redirect_uri"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		resume := httptest.NewRequest("GET", out.RedirectURI, nil)
		for _, c := range cookies {
			resume.AddCookie(c)
		}
		rec = serve(t, env, resume)
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "https://client.example/cb?") {
			t.Fatalf("resume after approving %q: %d %s", body, rec.Code, rec.Header().Get("Location"))
		}
	})
}
