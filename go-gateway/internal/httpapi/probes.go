package httpapi

import (
	"net/http"

	"github.com/tandem-inference/tandem/go-gateway/internal/health"
)

type probeResponse struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Models is each model's state ("ready" or "not_ready") in /readyz.
	Models []modelReadiness `json:"models,omitempty"`
}

type modelReadiness struct {
	Model  string `json:"model"`
	Status string `json:"status"`
}

// Readable explanations of health.Report reasons. The underlying error is
// logged by health.Readiness, not shown: it may name internal addresses.
var readinessDetails = map[string]string{
	health.ReasonDraining:         "the gateway is shutting down",
	health.ReasonNoServingBackend: "no inference core backend reports SERVING",
}

// handleHealthz serves GET /healthz: the process is up and serving HTTP.
// It deliberately ignores the core, so that a core outage never gets
// healthy gateways restarted.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = writeJSON(w, http.StatusOK, probeResponse{Status: "ok"})
	})
}

// handleReadyz serves GET /readyz: 200 when at least one model can be
// served, 503 with the reason otherwise; the body lists every model's state.
func handleReadyz(readiness ReadinessChecker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		report := readiness.Check(r.Context())
		models := make([]modelReadiness, len(report.Models))
		for i, m := range report.Models {
			models[i] = modelReadiness{Model: m.Model, Status: readyStatus(m.Ready)}
		}
		if report.Ready {
			_ = writeJSON(w, http.StatusOK, probeResponse{Status: "ready", Models: models})
			return
		}
		noteOutcome(r.Context(), report.Reason)
		_ = writeJSON(w, http.StatusServiceUnavailable, probeResponse{
			Status: "not_ready", Reason: report.Reason, Detail: readinessDetails[report.Reason], Models: models,
		})
	})
}

func readyStatus(ready bool) string {
	if ready {
		return "ready"
	}
	return "not_ready"
}
