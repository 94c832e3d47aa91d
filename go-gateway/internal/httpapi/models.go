package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
)

// handleListModels serves GET /v1/models: the one model the cores serve.
func handleListModels(models ModelSource, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := models.Get(r.Context())
		if err != nil {
			writeError(w, r, logger, fmt.Errorf("get model info: %w", err))
			return
		}
		_ = writeJSON(w, http.StatusOK, modelList{Object: "list", Data: []modelObject{newModelObject(info.ID)}})
	})
}

// handleGetModel serves GET /v1/models/{id}. The id may contain slashes
// ("sentence-transformers/all-MiniLM-L6-v2"), hence the {id...} pattern;
// an alias is answered with the canonical model.
func handleGetModel(models ModelSource, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := models.Get(r.Context())
		if err != nil {
			writeError(w, r, logger, fmt.Errorf("get model info: %w", err))
			return
		}
		id := r.PathValue("id")
		if !info.Accepts(id) {
			writeError(w, r, logger, errModelNotFound(id))
			return
		}
		_ = writeJSON(w, http.StatusOK, newModelObject(info.ID))
	})
}
