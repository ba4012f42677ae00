package mgmtapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// maxAPIBody is the largest request body the management API reads.
const maxAPIBody = 64 << 10

// jsonBody is a request body: a JSON object whose known fields are read
// one at a time, so that every field of the wrong type is reported.
// Unknown fields are ignored, as Sumo Logic does.
type jsonBody struct {
	fields   map[string]json.RawMessage
	noun     string
	problems []apiProblem
}

// readBody reads the request body as a JSON object of at most maxAPIBody
// bytes. It answers 415 for a body that is not declared as JSON, 413 for
// one too large and 400 for anything but exactly one JSON object.
func (c *apiCall) readBody() (*jsonBody, error) {
	return readJSONObject(c.w, c.r, c.noun)
}

func readJSONObject(w http.ResponseWriter, r *http.Request, noun string) (*jsonBody, error) {
	if !jsonContentType(r.Header.Get("Content-Type")) {
		return nil, apiErrorf(http.StatusUnsupportedMediaType, codeContentType, "the request body must be JSON, sent with Content-Type: application/json")
	}
	if r.ContentLength > maxAPIBody {
		return nil, &http.MaxBytesError{Limit: maxAPIBody}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		return nil, bodyError(err)
	}
	if fields == nil {
		return nil, apiErrorf(http.StatusBadRequest, codeJSONInvalid, "the request body must be a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, apiErrorf(http.StatusBadRequest, codeJSONInvalid, "the request body must hold one JSON object and nothing after it")
	}
	return &jsonBody{fields: fields, noun: noun}, nil
}

// bodyError explains why a body is not a JSON object.
func bodyError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return apiErrorf(http.StatusBadRequest, codeJSONInvalid, "a JSON object is required as the request body")
	case errors.As(err, &se):
		return apiErrorf(http.StatusBadRequest, codeJSONInvalid, "the request body is not valid JSON (at byte %d): %s", se.Offset, se.Error())
	case errors.As(err, &te):
		return apiErrorf(http.StatusBadRequest, codeJSONInvalid, "the request body must be a JSON object, not %s", te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apiErrorf(http.StatusBadRequest, codeJSONInvalid, "the request body ends in the middle of its JSON")
	}
	return apiErrorf(http.StatusBadRequest, codeJSONInvalid, "the request body could not be read as JSON")
}

// jsonContentType reports whether a Content-Type names JSON:
// application/json or any application/*+json, with any parameters.
func jsonContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// raw returns a field's JSON, or nil when it is absent or null.
func (b *jsonBody) raw(name string) json.RawMessage {
	v := b.fields[name]
	if v == nil || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil
	}
	return v
}

func (b *jsonBody) wrongType(name, want string) {
	b.problems = append(b.problems, apiProblem{Code: b.noun + ":invalid_type", Message: name + " must be " + want})
}

// require records a problem when a field is absent or null.
func (b *jsonBody) require(name string) bool {
	if b.raw(name) == nil {
		b.problems = append(b.problems, apiProblem{Code: b.noun + ":" + name + "_required", Message: name + " is required"})
		return false
	}
	return true
}

// str reads a string field; nil when absent.
func (b *jsonBody) str(name string) *string {
	v := b.raw(name)
	if v == nil {
		return nil
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		b.wrongType(name, "a string")
		return nil
	}
	return &s
}

// strs reads a field holding an array of strings; nil when absent.
func (b *jsonBody) strs(name string) *[]string {
	v := b.raw(name)
	if v == nil {
		return nil
	}
	var s []string
	if json.Unmarshal(v, &s) != nil {
		b.wrongType(name, "an array of strings")
		return nil
	}
	if s == nil {
		s = []string{}
	}
	return &s
}

// boolean reads a true/false field; nil when absent.
func (b *jsonBody) boolean(name string) *bool {
	v := b.raw(name)
	if v == nil {
		return nil
	}
	var x bool
	if json.Unmarshal(v, &x) != nil {
		b.wrongType(name, "true or false")
		return nil
	}
	return &x
}

// days reads a whole number of days given as a JSON number or a numeric
// string ("60"); nil when absent. The range is checked by the store.
func (b *jsonBody) days(name string) *int {
	v := b.raw(name)
	if v == nil {
		return nil
	}
	n, ok := parseDays(v)
	if !ok {
		b.wrongType(name, "a whole number of days, as a number or a numeric string")
		return nil
	}
	return &n
}

func parseDays(v json.RawMessage) (int, bool) {
	var text string
	if json.Unmarshal(v, &text) != nil {
		var num json.Number
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if dec.Decode(&num) != nil {
			return 0, false
		}
		text = num.String()
	}
	text = strings.TrimSpace(text)
	if n, err := strconv.Atoi(text); err == nil {
		return n, true
	}
	// 60.0 and 6e1 are whole numbers too.
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1e9 {
		return 0, false
	}
	return int(f), true
}

// err returns the problems found so far as a 400, or nil.
func (b *jsonBody) err() error {
	if len(b.problems) == 0 {
		return nil
	}
	return &apiError{status: http.StatusBadRequest, problems: b.problems}
}
