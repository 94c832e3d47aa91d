package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// writeJSON writes v with the given status. It marshals before writing
// anything, so a marshalling error can still be answered with a 500. Only
// values holding floats can fail to marshal (NaN); callers writing fixed
// shapes such as model objects and probe answers ignore the error.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	var body []byte
	var err error
	if a, ok := v.(jsonAppender); ok {
		body, err = a.appendJSON(nil) // the embeddings response (encode.go)
	} else {
		body, err = json.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	// Responses are per request and may carry embeddings of private text.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// A write error means the client is gone; there is no one to tell.
	_, _ = w.Write(body)
	return nil
}
