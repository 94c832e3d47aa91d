package upstream

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tandem-inference/tandem/go-gateway/internal/config"
)

// Retry throttling (gRFC A6): every failed attempt costs a token, every
// success gives back tokenRatio, and retries stop while fewer than half the
// tokens remain. It keeps retries from tripling the load on a pool that is
// failing for everyone, which a fixed maxAttempts alone would do.
//
// The numbers decide how much failure retries may cover. In balance, retries
// continue while the share of failed attempts stays below
// tokenRatio / (1 + tokenRatio). gRFC A6's example (maxTokens 10, ratio 0.1)
// stops them at 9 %: with one of two cores answering UNAVAILABLE to every
// call, half the first attempts fail, retries were throttled after five
// failures, and clients got 198 errors in 400 calls (isolation_test.go,
// TestRetriesCoverACoreThatFailsEveryCall). Ratio 1 keeps retrying up to
// 50 % of attempts failing, the case of one dead core in two; 7-17 errors
// in 400 calls remain (41 under -race), the calls whose three attempts all
// landed on the failing core, as many as with throttling off. When every core fails, 20 tokens
// still stop retries after about ten failures
// (TestRetryThrottlingStopsRetriesWhenEveryCoreFails: 106 attempts for 100
// calls, not 300).
const (
	retryThrottleMaxTokens  = 20
	retryThrottleTokenRatio = 1
	retryBackoffMultiplier  = 2
)

// The JSON shape of a gRPC service config, limited to the fields we set.
// Field names follow grpc/service_config.proto.
type serviceConfig struct {
	LoadBalancingConfig []map[string]struct{} `json:"loadBalancingConfig"`
	// HealthCheckConfig turns on client-side health checking: each backend
	// is watched over grpc.health.v1 and round_robin only picks backends that
	// report SERVING, so a core that is still warming up or draining gets no
	// traffic.
	HealthCheckConfig healthCheckConfig `json:"healthCheckConfig"`
	MethodConfig      []methodConfig    `json:"methodConfig"`
	RetryThrottling   *retryThrottling  `json:"retryThrottling,omitempty"`
}

type healthCheckConfig struct {
	ServiceName string `json:"serviceName"`
}

type methodConfig struct {
	Name        []methodName `json:"name"`
	RetryPolicy *retryPolicy `json:"retryPolicy,omitempty"`
}

type methodName struct {
	Service string `json:"service"`
}

type retryPolicy struct {
	MaxAttempts          int      `json:"maxAttempts"`
	InitialBackoff       string   `json:"initialBackoff"`
	MaxBackoff           string   `json:"maxBackoff"`
	BackoffMultiplier    float64  `json:"backoffMultiplier"`
	RetryableStatusCodes []string `json:"retryableStatusCodes"`
}

type retryThrottling struct {
	MaxTokens  float64 `json:"maxTokens"`
	TokenRatio float64 `json:"tokenRatio"`
}

// serviceConfigJSON returns the default service config of the channel:
// round_robin over all resolved backends, client-side health checking, and
// retries of UNAVAILABLE only. UNAVAILABLE means the call did not run (the
// backend was down, starting or draining), so retrying it, on another
// backend, is safe; every other code is either final or, like
// DEADLINE_EXCEEDED, means the budget is spent.
func serviceConfigJSON(cfg config.Upstream) (string, error) {
	sc := serviceConfig{
		LoadBalancingConfig: []map[string]struct{}{{"round_robin": {}}},
		HealthCheckConfig:   healthCheckConfig{ServiceName: ServiceName},
		MethodConfig:        []methodConfig{{Name: []methodName{{Service: ServiceName}}}},
	}
	// gRPC rejects a retry policy with fewer than two attempts.
	if cfg.MaxAttempts >= 2 {
		sc.MethodConfig[0].RetryPolicy = &retryPolicy{
			MaxAttempts:          cfg.MaxAttempts,
			InitialBackoff:       protoDuration(cfg.RetryInitialBackoff),
			MaxBackoff:           protoDuration(cfg.RetryMaxBackoff),
			BackoffMultiplier:    retryBackoffMultiplier,
			RetryableStatusCodes: []string{"UNAVAILABLE"},
		}
		sc.RetryThrottling = &retryThrottling{MaxTokens: retryThrottleMaxTokens, TokenRatio: retryThrottleTokenRatio}
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return "", fmt.Errorf("marshal service config: %w", err)
	}
	return string(b), nil
}

// protoDuration formats d as a JSON google.protobuf.Duration ("0.1s").
func protoDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
