package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestUpstreamPoolsReplaceTheDefaultTarget(t *testing.T) {
	cfg, err := Load(nil, env(map[string]string{
		"TANDEM_GATEWAY_UPSTREAM_POOLS": "all-MiniLM-L6-v2=dns:///tandem-core-headless:50051, " +
			"all-MiniLM-L6-v2-int8=dns:///tandem-core-int8-headless:50051",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Pool{
		{Model: "all-MiniLM-L6-v2", Target: "dns:///tandem-core-headless:50051"},
		{Model: "all-MiniLM-L6-v2-int8", Target: "dns:///tandem-core-int8-headless:50051"},
	}
	if cfg.Upstream.Target != "" || !reflect.DeepEqual(cfg.Upstream.Pools, want) {
		t.Errorf("upstream = %+v", cfg.Upstream)
	}
	if got := cfg.Upstream.PoolList(); !reflect.DeepEqual(got, want) {
		t.Errorf("PoolList() = %+v, want the configured pools", got)
	}
}

func TestWithoutPoolsTheTargetIsOneUnnamedPool(t *testing.T) {
	cfg, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []Pool{{Target: DefaultUpstreamTarget}}
	if got := cfg.Upstream.PoolList(); !reflect.DeepEqual(got, want) {
		t.Errorf("PoolList() = %+v, want %+v", got, want)
	}
}

func TestInvalidPoolsAreAllReported(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{
			name: "every problem in one list",
			args: []string{"-upstream-pools", "a=dns:///a:50051,a=dns:///b:50051,=dns:///c:50051,b=core:50051,c=,d=dns:///"},
			wants: []string{
				`model "a" is listed twice`,
				"empty model id",
				`model "b": target "core:50051": want a gRPC target URI`,
				`model "c": target ""`,
				`model "d": target "dns:///"`,
			},
		},
		{
			name:  "a pair without =",
			args:  []string{"-upstream-pools", "all-MiniLM-L6-v2"},
			wants: []string{`"all-MiniLM-L6-v2": want <model id>=<gRPC target URI>`},
		},
		{
			name:  "pools and a target",
			args:  []string{"-upstream-pools", "a=dns:///a:50051", "-upstream-target", "dns:///core:50051"},
			wants: []string{"set upstream-pools or upstream-target/upstream-addresses, not both"},
		},
		{
			name:  "pools and addresses",
			args:  []string{"-upstream-pools", "a=dns:///a:50051", "-upstream-addresses", "10.0.0.1:50051"},
			wants: []string{"not both"},
		},
		{
			name:  "too many pools",
			args:  []string{"-upstream-pools", strings.Repeat("m=dns:///a:1,", maxPools) + "last=dns:///a:1"},
			wants: []string{"at most 32"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, env(nil))
			if err == nil {
				t.Fatal("invalid pools accepted")
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %s:\n%v", want, err)
				}
			}
		})
	}
}

func TestPoolTargetsGRPCResolves(t *testing.T) {
	for _, target := range []string{
		"dns:///tandem-core-headless:50051",
		"dns://10.0.0.10:53/core.tandem.svc:50051",
		"ipv4:127.0.0.1:50051",
		"unix:///run/core.sock",
		"passthrough:///127.0.0.1:50051",
	} {
		if err := checkTarget(target); err != nil {
			t.Errorf("checkTarget(%q) = %v, want accepted", target, err)
		}
	}
}
