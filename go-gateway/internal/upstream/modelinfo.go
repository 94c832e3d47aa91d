package upstream

import (
	"context"
	"slices"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
)

// ModelInfo describes the model the core serves and the limits it enforces.
type ModelInfo struct {
	ID                 string
	Aliases            []string
	Dimension          int
	MaxTokens          int
	MaxTextsPerRequest int
	MaxTextBytes       int
	Precision          string
}

// Accepts reports whether name selects this model: its id or an alias.
func (m ModelInfo) Accepts(name string) bool {
	return name == m.ID || slices.Contains(m.Aliases, name)
}

// FetchModelInfo asks the core which model it serves. Callers normally go
// through a ModelCache.
func (c *Client) FetchModelInfo(ctx context.Context) (ModelInfo, error) {
	const method = "GetModelInfo"
	out, err := invoke(ctx, c, method, func(ctx context.Context) (*contractv1.GetModelInfoResponse, error) {
		return c.embedding.GetModelInfo(ctx, &contractv1.GetModelInfoRequest{})
	})
	if err != nil {
		return ModelInfo{}, err
	}
	if out.GetModelId() == "" || out.GetDimension() == 0 {
		return ModelInfo{}, newContractError(method, "model info without id or dimension: %v", out)
	}
	return ModelInfo{
		ID:                 out.GetModelId(),
		Aliases:            out.GetAliases(),
		Dimension:          int(out.GetDimension()),
		MaxTokens:          int(out.GetMaxTokens()),
		MaxTextsPerRequest: int(out.GetMaxTextsPerRequest()),
		MaxTextBytes:       int(out.GetMaxTextBytes()),
		Precision:          out.GetPrecision(),
	}, nil
}
