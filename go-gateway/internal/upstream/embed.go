package upstream

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	contractv1 "github.com/tandem-inference/tandem/go-gateway/gen/tandem/contract/v1"
)

// serverTimingKey is the trailing metadata in which the core reports where
// its time went, in the HTTP Server-Timing syntax.
const serverTimingKey = "server-timing"

// EmbedRequest asks for one embedding per text.
type EmbedRequest struct {
	Texts []string
	// Model is the model id or an alias.
	Model string
	// Truncate embeds the first max_tokens tokens of a longer text; false
	// makes the core reject such a text with INVALID_ARGUMENT instead.
	Truncate bool
}

// Embedding is the result for one text.
type Embedding struct {
	// Values is the unit-length vector.
	Values     []float32
	TokenCount uint32
	Truncated  bool
}

// EmbedResult holds Embeddings[i] for EmbedRequest.Texts[i].
type EmbedResult struct {
	// Model is the canonical id of the model that computed the embeddings.
	Model       string
	Embeddings  []Embedding
	TotalTokens uint64
	// ServerTiming is the core's server-timing trailer, empty if it sent none.
	ServerTiming string
}

// Embed computes normalized embeddings of req.Texts.
func (c *Client) Embed(ctx context.Context, req EmbedRequest) (EmbedResult, error) {
	const method = "Embed"
	in := &contractv1.EmbedRequest{
		Texts: req.Texts,
		Model: req.Model,
		// The OpenAI API returns unit vectors; ask explicitly rather than rely
		// on the proto's "unset means true".
		Normalize:  proto.Bool(true),
		Truncation: truncationPolicy(req.Truncate),
	}

	var trailer metadata.MD
	out, err := invoke(ctx, c, method, func(ctx context.Context) (*contractv1.EmbedResponse, error) {
		return c.embedding.Embed(ctx, in, grpc.Trailer(&trailer))
	})
	if err != nil {
		return EmbedResult{}, err
	}

	if got, want := len(out.GetEmbeddings()), len(req.Texts); got != want {
		return EmbedResult{}, newContractError(method, "%d embeddings for %d texts", got, want)
	}
	res := EmbedResult{
		Model:        out.GetModel(),
		Embeddings:   make([]Embedding, len(out.GetEmbeddings())),
		TotalTokens:  out.GetTotalTokens(),
		ServerTiming: strings.Join(trailer.Get(serverTimingKey), ", "),
	}
	for i, e := range out.GetEmbeddings() {
		res.Embeddings[i] = Embedding{Values: e.GetValues(), TokenCount: e.GetTokenCount(), Truncated: e.GetTruncated()}
	}
	return res, nil
}

func truncationPolicy(truncate bool) contractv1.TruncationPolicy {
	if truncate {
		return contractv1.TruncationPolicy_TRUNCATION_POLICY_TRUNCATE
	}
	return contractv1.TruncationPolicy_TRUNCATION_POLICY_REJECT
}
