package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
)

// handleListModels serves GET /v1/models: every configured model, with its
// dimension and the limits that apply to it. A pool that cannot be asked
// (its cores are down, and it never answered) is still listed, by its
// configured id with "ready": false, so the list is the same whatever the
// pools' state; the single unnamed pool has no configured id, so its outage
// is an error as before.
func handleListModels(pools router, readiness ReadinessChecker, limits InputLimits, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serving := servingPools(r.Context(), readiness)
		objects := make([]modelObject, len(pools))
		errs := make([]error, len(pools))
		// Asked at once: a down pool's call timeout is paid once, not once
		// per pool.
		var wg sync.WaitGroup
		for i, p := range pools {
			wg.Go(func() { objects[i], errs[i] = describe(r.Context(), p, serving, limits) })
		}
		wg.Wait()
		if len(pools) == 1 && pools[0].Model == "" && errs[0] != nil {
			writeError(w, r, logger, errs[0])
			return
		}
		_ = writeJSON(w, http.StatusOK, modelList{Object: "list", Data: objects})
	})
}

// handleGetModel serves GET /v1/models/{id}. The id may contain slashes
// ("sentence-transformers/all-MiniLM-L6-v2"), hence the {id...} pattern;
// an alias is answered with the pool's model.
func handleGetModel(pools router, readiness ReadinessChecker, limits InputLimits, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		pool, err := pools.route(r.Context(), id)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		noteModel(r.Context(), pool)
		obj, err := describe(r.Context(), pool, servingPools(r.Context(), readiness), limits)
		if err != nil && pool.Model == "" {
			writeError(w, r, logger, err)
			return
		}
		if err == nil && !pool.accepts(id, obj.info) {
			writeError(w, r, logger, errModelNotFound(id))
			return
		}
		_ = writeJSON(w, http.StatusOK, obj)
	})
}

// describe is a pool's entry in the model list. Its id is the configured
// one (what clients route by), or the core's for the unnamed pool; the
// core's other names are its aliases. The limits are the stricter of the
// gateway's and the core's. When the pool cannot be asked, the entry has the
// configured id, "ready": false, and err is the reason.
func describe(ctx context.Context, p Pool, serving map[string]bool, limits InputLimits) (modelObject, error) {
	info, err := p.Models.Get(ctx)
	if err != nil {
		return newModelObject(p.Model), fmt.Errorf("get model info: %w", err)
	}
	id := p.Model
	if id == "" {
		id = info.ID
	}
	aliases := make([]string, 0, len(info.Aliases)+1)
	for _, name := range append([]string{info.ID}, info.Aliases...) {
		if name != id && !slices.Contains(aliases, name) {
			aliases = append(aliases, name)
		}
	}
	effective := limits.tightenedBy(info)
	obj := newModelObject(id)
	obj.Aliases = aliases
	obj.Dimension = info.Dimension
	obj.MaxTokens = info.MaxTokens
	obj.MaxInputs = effective.MaxInputs
	obj.MaxTextBytes = effective.MaxTextBytes
	obj.Precision = info.Precision
	ready, checked := serving[p.label()]
	obj.Ready = ready || !checked
	obj.info = info
	return obj, nil
}

// servingPools is each pool's state (by label) at the last readiness check,
// which is cached, so listing models costs no health RPC per request. While
// draining nothing is checked and the map is empty.
func servingPools(ctx context.Context, readiness ReadinessChecker) map[string]bool {
	report := readiness.Check(ctx)
	serving := make(map[string]bool, len(report.Models))
	for _, m := range report.Models {
		serving[m.Model] = m.Ready
	}
	return serving
}
