package approval

import (
	"context"
	"errors"
	"net/http"
)

// Decision is the host app's answer for one session.
type Decision struct {
	// Approve selects Approval; otherwise the session is denied with
	// DenyDescription.
	Approve         bool
	Approval        Approval
	DenyDescription string
}

// Flow serves the host app's approval URL. GET ?token=... reads the session
// and hands it to Page; a POST (form field "token") reads it again, asks
// Decide, tells Latch, and redirects the browser (303) to the URL Latch
// answered. Put your login check in front of it: Flow assumes the user is
// signed in to the host app, and Decide reads who they are.
//
// The POST must be protected against cross-site requests like any other
// form of the host app (a SameSite=Lax or Strict session cookie suffices).
type Flow struct {
	Client *Client
	// Page renders the consent screen for s. Its form posts back to the
	// same URL with a "token" field holding s.ID.
	Page func(w http.ResponseWriter, r *http.Request, s *Session)
	// Decide turns the posted form into a decision.
	Decide func(r *http.Request, s *Session) (Decision, error)
	// Error renders a failure (nil: a plain-text page). Unknown or expired
	// sessions (ErrNotFound, ErrExpired) and decided ones (ErrConflict) are
	// the user's doing (an old tab, a double click): say so kindly.
	Error func(w http.ResponseWriter, r *http.Request, err error)
}

type sessionKey struct{}

// SessionFrom returns the session Flow read for this request (in Page and
// Decide it is also passed directly).
func SessionFrom(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*Session)
	return s, ok
}

// ServeHTTP implements http.Handler.
func (f *Flow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var token string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		token = r.URL.Query().Get("token")
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			f.fail(w, r, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "unreadable form"})
			return
		}
		token = r.PostForm.Get("token")
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s, err := f.Client.Session(r.Context(), token)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if s.State != "" && s.State != "pending" {
		// Latch still shows a decided session (until it expires); a
		// consent page for it would only end in a 409.
		f.fail(w, r, &Error{Status: http.StatusConflict, Code: "conflict", Description: "this request was already " + s.State})
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
	if r.Method != http.MethodPost {
		w.Header().Set("Cache-Control", "no-store")
		f.Page(w, r, s)
		return
	}
	d, err := f.Decide(r, s)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	var to string
	if d.Approve {
		to, err = f.Client.Approve(r.Context(), s.ID, d.Approval)
	} else {
		to, err = f.Client.Deny(r.Context(), s.ID, d.DenyDescription)
	}
	if err != nil {
		f.fail(w, r, err)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (f *Flow) fail(w http.ResponseWriter, r *http.Request, err error) {
	if f.Error != nil {
		f.Error(w, r, err)
		return
	}
	status := http.StatusBadGateway
	msg := "the sign-in service could not be reached; please try again"
	var e *Error
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExpired):
		status, msg = http.StatusNotFound, "this sign-in request has expired or does not exist; go back to the app and start again"
	case errors.Is(err, ErrConflict):
		status, msg = http.StatusConflict, "this sign-in request was already answered"
	case errors.As(err, &e) && e.Status == http.StatusBadRequest:
		status, msg = http.StatusBadRequest, "the request was refused: "+e.Description
	}
	http.Error(w, msg, status)
}
