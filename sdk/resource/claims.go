package resource

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// claimsFrom reads the registered claims out of a token's (or an
// introspection answer's) JSON, refusing wrong types instead of guessing.
func claimsFrom(raw map[string]any) (*Claims, error) {
	if raw == nil {
		return nil, errors.New("claims must be a JSON object")
	}
	c := &Claims{Raw: raw}
	var err error
	str := func(name string) string {
		v, ok := raw[name]
		if !ok || err != nil {
			return ""
		}
		s, isStr := v.(string)
		if !isStr {
			err = errors.New(name + " must be a string")
		}
		return s
	}
	num := func(name string) time.Time {
		v, ok := raw[name]
		if !ok || err != nil {
			return time.Time{}
		}
		var f float64
		switch n := v.(type) {
		case json.Number:
			f, err = n.Float64()
		case float64:
			f = n
		default:
			err = errors.New(name + " must be a number")
		}
		if err == nil && (f < 0 || f > 1<<40) {
			err = errors.New(name + " is out of range")
		}
		if err != nil {
			err = errors.New(name + " must be a number")
			return time.Time{}
		}
		return time.Unix(int64(f), 0)
	}
	c.Issuer, c.Subject, c.ClientID, c.JTI = str("iss"), str("sub"), str("client_id"), str("jti")
	c.Expiry, c.notBefore, c.IssuedAt, c.AuthTime = num("exp"), num("nbf"), num("iat"), num("auth_time")
	if err != nil {
		return nil, err
	}
	switch a := raw["aud"].(type) {
	case nil:
	case string:
		c.Audience = []string{a}
	case []any:
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, errors.New("aud must hold strings")
			}
			c.Audience = append(c.Audience, s)
		}
	default:
		return nil, errors.New("aud must be a string or an array")
	}
	switch s := raw["scope"].(type) {
	case nil:
	case string:
		c.Scopes = strings.Fields(s)
	default:
		return nil, errors.New("scope must be a space-separated string")
	}
	switch cnf := raw["cnf"].(type) {
	case nil:
	case map[string]any:
		if j, ok := cnf["jkt"]; ok {
			s, isStr := j.(string)
			if !isStr || s == "" {
				return nil, errors.New("cnf.jkt must be a string")
			}
			c.JKT = s
		}
	default:
		return nil, errors.New("cnf must be an object")
	}
	return c, nil
}
