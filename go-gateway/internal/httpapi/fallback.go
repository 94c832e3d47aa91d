package httpapi

import (
	"log/slog"
	"net/http"
)

// handleMethodNotAllowed answers 405 for a known path with the wrong method.
func handleMethodNotAllowed(allowed string, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowed)
		writeError(w, r, logger, errMethodNotAllowed(r.Method, r.URL.Path, allowed))
	})
}

// handleNotFound answers 404 for an unknown path.
func handleNotFound(logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, logger, errRouteNotFound(r.Method, r.URL.Path))
	})
}
