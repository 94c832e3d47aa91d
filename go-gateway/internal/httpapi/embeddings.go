package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/upstream"
)

// handleEmbeddings serves POST /v1/embeddings.
func handleEmbeddings(pools router, limits Limits, m *metrics.Metrics, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		fail := func(err error) { writeError(w, r, logger, err) }

		if err := requireJSON(r); err != nil {
			fail(err)
			return
		}
		body, err := readBody(w, r, limits.MaxBodyBytes)
		if err != nil {
			fail(err)
			return
		}
		// Decode before asking the core anything, so a malformed request gets
		// its 400 even while the core is down.
		req, err := decodeEmbeddingsRequest(body, limits.Input)
		if err != nil {
			fail(err)
			return
		}
		// The model picks the pool: an unknown one is a 404 without a call,
		// and a pool that is down fails only its own model's requests.
		pool, err := pools.route(ctx, req.Model)
		if err != nil {
			fail(err)
			return
		}
		// Routed: the request counts under its pool's model from here on,
		// whatever fails next (except a name the single pool's cores turn
		// out not to serve: model_not_found counts as unknown).
		noteModel(ctx, pool)
		info, err := pool.Models.Get(ctx)
		if err != nil {
			fail(fmt.Errorf("get model info: %w", err))
			return
		}
		if err := req.checkAgainstModel(pool, info, limits.Input); err != nil {
			fail(err)
			return
		}
		traceEmbeddingsRequest(ctx, req)

		res, err := pool.Core.Embed(ctx, upstream.EmbedRequest{Texts: req.Inputs, Model: info.ID, Truncate: req.Truncate})
		if err != nil {
			if e, ok := errors.AsType[*upstream.Error](err); ok && e.Kind == upstream.KindNotFound {
				// The core no longer serves the model the cache describes
				// (it was redeployed): look again next time.
				pool.Models.Invalidate()
			}
			fail(fmt.Errorf("embed: %w", err))
			return
		}
		traceEmbeddingsResult(ctx, res)

		resp, err := newEmbeddingsResponse(req, res, info)
		if err != nil {
			fail(err)
			return
		}
		m.EmbeddingInputs.Observe(float64(len(req.Inputs)))
		m.EmbeddingTokens.Add(float64(res.TotalTokens))

		w.Header().Set("Server-Timing", serverTiming(time.Since(start), res.ServerTiming))
		if err := writeJSON(w, http.StatusOK, resp); err != nil {
			fail(err)
		}
	})
}

// newEmbeddingsResponse builds the OpenAI response, checking that the core
// kept its side of the contract.
func newEmbeddingsResponse(req embeddingsRequest, res upstream.EmbedResult, info upstream.ModelInfo) (embeddingsResponse, error) {
	data := make([]embeddingObject, len(res.Embeddings))
	for i, e := range res.Embeddings {
		if len(e.Values) != info.Dimension {
			return embeddingsResponse{}, errMalformedUpstreamAnswer(fmt.Errorf(
				"core returned a %d-dimensional vector for input %d of model %s (dimension %d)", len(e.Values), i, info.ID, info.Dimension))
		}
		data[i] = embeddingObject{
			Object:    "embedding",
			Index:     i,
			Embedding: embeddingVector{values: e.Values, base64: req.EncodingFormat == encodingBase64},
			Truncated: e.Truncated,
		}
	}
	model := res.Model
	if model == "" {
		model = info.ID
	}
	tokens := int(res.TotalTokens)
	return embeddingsResponse{
		Object: "list",
		Data:   data,
		Model:  model,
		Usage:  usage{PromptTokens: tokens, TotalTokens: tokens},
	}, nil
}

// serverTiming puts the gateway's own time in front of the core's entries,
// so a client sees where its latency went without access to either's logs.
func serverTiming(gateway time.Duration, core string) string {
	v := "gateway;dur=" + strconv.FormatFloat(float64(gateway.Microseconds())/1000, 'f', 1, 64)
	if core != "" {
		v += ", " + core
	}
	return v
}
