package server

import (
	"errors"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/apikeys"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/ratelimit"
	"github.com/latchhq/latch/storage"
)

// requireAPIKey admits a request carrying a live admin key in X-API-Key.
// Keys are looked up by their keyed hash, so comparison time says nothing
// about how much of a guess was right.
func (s *Server) requireAPIKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		k, err := s.apiKey(c)
		if err != nil {
			return err
		}
		ctx := audit.WithActor(c.Request().Context(), audit.ActorAPIKey, k.ID)
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
	k, err := s.apiKeys.Check(r.Context(), r.Header.Get("X-API-Key"), r.Method, c.Path())
	switch {
	case errors.Is(err, apikeys.ErrMissing):
		return nil, apierror.Unauthorized("X-API-Key header is required")
	case errors.Is(err, apikeys.ErrInvalid):
		s.limits.failures.Failed(r.Context(), ip, "")
		return nil, apierror.Unauthorized("invalid API key")
	case err != nil:
		return nil, apierror.Internal(err)
	}
	return k, nil
}
