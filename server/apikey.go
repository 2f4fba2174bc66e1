package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/ratelimit"
	"github.com/latchhq/latch/storage"
)

type apiKeyCtx struct{}

// requireAPIKey admits a request carrying a live admin key in X-API-Key.
// Keys are looked up by their keyed hash, so comparison time says nothing
// about how much of a guess was right.
func (s *Server) requireAPIKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		k, err := s.apiKey(c)
		if err != nil {
			return err
		}
		ctx := context.WithValue(c.Request().Context(), apiKeyCtx{}, k)
		ctx = audit.WithActor(ctx, audit.ActorAPIKey, k.ID)
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// apiKey checks X-API-Key. An address locked out by failed credentials is
// refused before the key is even looked up (SPEC §7), and a wrong key
// counts against it.
func (s *Server) apiKey(c echo.Context) (*storage.APIKey, error) {
	r := c.Request()
	presented := r.Header.Get("X-API-Key") != ""
	ip := ratelimit.ClientIP(r)
	if presented {
		if wait, locked := s.limits.failures.Locked(r.Context(), ip, ""); locked {
			return nil, s.rateLimited(c, limitCredentials, wait, "Too many failed API keys from this address; retry later.")
		}
	}
	k, err := s.checkAPIKey(c)
	ev := audit.Event{Name: audit.APIKeyUsed, Details: map[string]any{"method": c.Request().Method, "route": c.Path()}}
	if err != nil {
		ev.Name, ev.Outcome = audit.APIKeyFailed, audit.Failure
		var ae *apierror.Error
		if presented && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			s.limits.failures.Failed(r.Context(), ip, "")
		}
	} else {
		ev.ActorType, ev.ActorID = audit.ActorAPIKey, k.ID
	}
	s.audit.Record(c.Request().Context(), ev)
	return k, err
}

func (s *Server) checkAPIKey(c echo.Context) (*storage.APIKey, error) {
	presented := c.Request().Header.Get("X-API-Key")
	if presented == "" {
		return nil, apierror.Unauthorized("X-API-Key header is required")
	}
	k, err := s.store.APIKeyByHash(c.Request().Context(), s.hasher.Sum("apikey", presented))
	if err != nil {
		if storage.IsNotFound(err) {
			return nil, apierror.Unauthorized("invalid API key")
		}
		return nil, apierror.Internal(err)
	}
	return k, nil
}

// APIKeyFrom returns the admin key that authorised the request, if any.
func APIKeyFrom(ctx context.Context) (*storage.APIKey, bool) {
	k, ok := ctx.Value(apiKeyCtx{}).(*storage.APIKey)
	return k, ok
}
