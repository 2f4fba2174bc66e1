package apierror

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DecodeJSON reads one JSON object strictly: unknown fields and trailing
// data are errors, so a typo in a field name is caught, not ignored.
// An empty body is accepted unless required.
func DecodeJSON(r *http.Request, v any, required bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return BadRequest("Content-Type must be application/json")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if required {
				return BadRequest("a JSON body is required")
			}
			return nil
		}
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Description: "body too large"}
		}
		return BadRequest("malformed JSON body: %s", jsonProblem(err))
	}
	if dec.More() {
		return BadRequest("malformed JSON body: trailing data")
	}
	return nil
}

// jsonProblem keeps decoder messages short and free of Go type names.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %q has the wrong type", typeErr.Field)
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return msg
}
