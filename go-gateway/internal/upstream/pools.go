package upstream

import (
	"errors"
	"fmt"

	"github.com/tandem-inference/tandem/go-gateway/internal/config"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/telemetry"
)

// DefaultPoolLabel names the single pool of -upstream-target in metrics and
// readiness reports: its model is whatever its cores report, unknown at
// start-up, and a label must not change with the core's answers.
const DefaultPoolLabel = "default"

// Pool is one model's upstream: a Client (its own gRPC channel) and the
// cache of what its cores serve.
type Pool struct {
	// Model is the configured model id clients send, or "" for the single
	// pool of -upstream-target, which serves whatever its cores report.
	Model  string
	Client *Client
	Models *ModelCache
}

// Label is the pool's name in metrics and readiness reports.
func (p Pool) Label() string { return poolLabel(p.Model) }

func poolLabel(model string) string {
	if model == "" {
		return DefaultPoolLabel
	}
	return model
}

// NewPools creates one Client and one ModelCache per pool of cfg
// (config.Upstream.PoolList), in the configured order. Failure isolation
// between models follows from the separate channels: a pool whose cores are
// all down fails its own calls, and no other pool's connections, health
// watches or retry budget are involved.
func NewPools(cfg config.Upstream, lim config.Limits, m *metrics.Metrics, tracing telemetry.Tracing) ([]Pool, error) {
	var pools []Pool
	for _, p := range cfg.PoolList() {
		client, err := newClient(p, cfg, lim, m, tracing)
		if err != nil {
			_ = ClosePools(pools)
			return nil, fmt.Errorf("pool %s: %w", poolLabel(p.Model), err)
		}
		pools = append(pools, Pool{Model: p.Model, Client: client, Models: NewModelCache(client.FetchModelInfo, cfg.ModelInfoTTL)})
	}
	return pools, nil
}

// ClosePools closes every pool's connection.
func ClosePools(pools []Pool) error {
	var errs []error
	for _, p := range pools {
		if err := p.Client.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close pool %s: %w", p.Label(), err))
		}
	}
	return errors.Join(errs...)
}
