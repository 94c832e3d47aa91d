package upstream

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tandem-inference/tandem/go-gateway/internal/config"
)

func TestServiceConfigRetriesOnlyUnavailable(t *testing.T) {
	cfg := config.Default().Upstream
	cfg.MaxAttempts = 4
	cfg.RetryInitialBackoff = 100 * time.Millisecond
	cfg.RetryMaxBackoff = 1500 * time.Millisecond

	raw, err := serviceConfigJSON(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sc serviceConfig
	if err := json.Unmarshal([]byte(raw), &sc); err != nil {
		t.Fatalf("service config is not JSON: %v\n%s", err, raw)
	}
	if len(sc.LoadBalancingConfig) != 1 || sc.LoadBalancingConfig[0]["round_robin"] != struct{}{} {
		t.Errorf("load balancing = %v, want round_robin", sc.LoadBalancingConfig)
	}
	if sc.HealthCheckConfig.ServiceName != ServiceName {
		t.Errorf("health check service = %q, want %q", sc.HealthCheckConfig.ServiceName, ServiceName)
	}
	rp := sc.MethodConfig[0].RetryPolicy
	if rp == nil {
		t.Fatal("no retry policy")
	}
	if rp.MaxAttempts != 4 || rp.InitialBackoff != "0.1s" || rp.MaxBackoff != "1.5s" {
		t.Errorf("retry policy = %+v", rp)
	}
	if len(rp.RetryableStatusCodes) != 1 || rp.RetryableStatusCodes[0] != "UNAVAILABLE" {
		t.Errorf("retryable codes = %v, want only UNAVAILABLE", rp.RetryableStatusCodes)
	}
	if sc.RetryThrottling == nil {
		t.Error("no retry throttling")
	}
}

func TestServiceConfigWithoutRetries(t *testing.T) {
	cfg := config.Default().Upstream
	cfg.MaxAttempts = 1
	raw, err := serviceConfigJSON(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sc serviceConfig
	if err := json.Unmarshal([]byte(raw), &sc); err != nil {
		t.Fatal(err)
	}
	if sc.MethodConfig[0].RetryPolicy != nil || sc.RetryThrottling != nil {
		t.Errorf("max attempts 1 still configures retries: %s", raw)
	}
}
