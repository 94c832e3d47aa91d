package httpapi

import (
	"context"
	"time"

	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// aliasLookupTimeout bounds asking a pool that has never answered which
// names it serves, when a request names a model no pool is configured or
// known under. Short, so an unknown model is a 404 at once rather than after
// a down pool's call timeout.
const aliasLookupTimeout = 500 * time.Millisecond

// Pool is one model's upstream as the API sees it; main builds one per
// upstream.Pool.
type Pool struct {
	// Model is the configured model id, or "" for the single pool of
	// -upstream-target, which serves whatever its cores report.
	Model  string
	Core   Embedder
	Models ModelSource
}

// router picks the pool of a request's model.
type router []Pool

// route returns the pool serving name: the pool configured under it, else
// the pool whose cores report it as their id or an alias. The single
// unnamed pool takes every name, and its model description decides
// (checkAgainstModel). Unknown names are errModelNotFound.
func (r router) route(ctx context.Context, name string) (Pool, error) {
	if len(r) == 1 && r[0].Model == "" {
		return r[0], nil
	}
	for _, p := range r {
		if p.Model == name {
			return p, nil
		}
	}
	// What the pools' cores reported before: no call.
	var unknown []Pool
	for _, p := range r {
		info, ok := p.Models.Peek()
		if !ok {
			unknown = append(unknown, p)
			continue
		}
		if info.Accepts(name) {
			return p, nil
		}
	}
	// Pools never heard from yet (just started, or down since start) are
	// asked once, within a short bound; a down pool then costs this request
	// at most aliasLookupTimeout.
	if len(unknown) > 0 {
		ctx, cancel := context.WithTimeout(ctx, aliasLookupTimeout)
		defer cancel()
		for _, p := range unknown {
			if info, err := p.Models.Get(ctx); err == nil && info.Accepts(name) {
				return p, nil
			}
		}
	}
	return Pool{}, errModelNotFound(name)
}

// accepts reports whether the pool serves name, by its configured id or by
// what its cores report.
func (p Pool) accepts(name string, info upstream.ModelInfo) bool {
	return (p.Model != "" && name == p.Model) || info.Accepts(name)
}

// label names the pool in readiness reports and metrics, as upstream does.
func (p Pool) label() string {
	if p.Model == "" {
		return upstream.DefaultPoolLabel
	}
	return p.Model
}
