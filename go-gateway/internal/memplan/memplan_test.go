package memplan

import (
	"errors"
	"testing"
)

var chartDefaults = Inputs{MaxInFlight: 32, MaxBodyBytes: 4 << 20, MaxInputs: 256, MaxTextBytes: 8192, Dimension: 384, GoMemRatio: 0.9}

// The formula worked by hand for the chart's defaults, so that a change to a
// constant shows up as a changed number here and in docs/gateway.md.
func TestComputeChartDefaults(t *testing.T) {
	p, err := Compute(chartDefaults)
	if err != nil {
		t.Fatal(err)
	}
	want := Plan{
		Inputs:           chartDefaults,
		BaseBytes:        32 << 20,
		BodyBytes:        8 << 20,                                         // 2 x 4 MiB
		TextBytes:        2 << 20,                                         // 256 x 8192, below the body
		UpstreamBytes:    2<<20 + 256*8,                                   // texts + framing
		ResponseBytes:    256*384*8 + 3*256*(384*18+128),                  // 786,432 + 5,406,720
		OverheadBytes:    64 << 10,                                        //
		PerRequestBytes:  8<<20 + 2<<20 + 2<<20 + 2048 + 6193152 + 64<<10, // 18,843,648
		TotalBytes:       32<<20 + 32*18843648,                            // 636,551,168
		MemoryRequestMiB: 608,                                             // ceil(636,551,168 / 2^20)
		MemoryLimitMiB:   675,                                             // ceil(636,551,168 / 0.9 / 2^20)
		GoMemLimitBytes:  675 << 20 * 90 / 100,                            // 637,009,920 >= total
		RatioPercent:     90,
	}
	if p != want {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
	if p.GoMemLimitBytes < p.TotalBytes {
		t.Errorf("GOMEMLIMIT %d below the plan's %d bytes", p.GoMemLimitBytes, p.TotalBytes)
	}
}

func TestTextsAreBoundedByTheBody(t *testing.T) {
	in := chartDefaults
	in.MaxBodyBytes = 1 << 20 // less than 256 x 8192
	p, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	if p.TextBytes != 1<<20 {
		t.Errorf("texts %d, want the body's 1 MiB", p.TextBytes)
	}
}

func TestComputeGrowsWithEveryInput(t *testing.T) {
	base, _ := Compute(chartDefaults)
	for name, change := range map[string]func(*Inputs){
		"in flight": func(in *Inputs) { in.MaxInFlight++ },
		"body":      func(in *Inputs) { in.MaxBodyBytes += 1 << 20 },
		"inputs":    func(in *Inputs) { in.MaxInputs++ },
		"dimension": func(in *Inputs) { in.Dimension++ },
	} {
		in := chartDefaults
		change(&in)
		p, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		if p.TotalBytes <= base.TotalBytes {
			t.Errorf("%s: total %d, not above %d", name, p.TotalBytes, base.TotalBytes)
		}
	}
}

func TestComputeRefusesUnboundedAndInvalidInputs(t *testing.T) {
	in := chartDefaults
	in.MaxInFlight = 0
	if _, err := Compute(in); !errors.Is(err, ErrUnbounded) {
		t.Errorf("max-in-flight 0: err = %v, want ErrUnbounded", err)
	}
	for _, change := range []func(*Inputs){
		func(in *Inputs) { in.MaxInFlight = -1 },
		func(in *Inputs) { in.MaxInputs = 0 },
		func(in *Inputs) { in.Dimension = 0 },
		func(in *Inputs) { in.GoMemRatio = 0 },
		func(in *Inputs) { in.GoMemRatio = 1.5 },
	} {
		in := chartDefaults
		change(&in)
		if _, err := Compute(in); err == nil {
			t.Errorf("%+v accepted", in)
		}
	}
}

func TestFits(t *testing.T) {
	p, _ := Compute(chartDefaults)
	if !p.Fits(p.MemoryLimitMiB << 20) {
		t.Error("the plan's own limit does not fit it")
	}
	if p.Fits((p.MemoryLimitMiB - 1) << 20) {
		t.Error("a limit 1 MiB below the plan's fits it")
	}
}
