package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0.01, 1}} {
		if got := percentileMs(d, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentileMs(nil, 0.5); got != 0 {
		t.Errorf("empty = %v", got)
	}
}

func TestPickWrapsAroundTheCorpus(t *testing.T) {
	corpus := []string{"a", "b", "c"}
	if got := pick(corpus, 1, 2); got[0] != "c" || got[1] != "a" {
		t.Fatalf("pick = %v", got)
	}
}

func TestClosedLoopIsBoundedByRequestCount(t *testing.T) {
	calls := 0
	call := func(context.Context, int) (int, error) {
		calls++
		if calls%10 == 0 {
			return 0, errors.New("boom")
		}
		return 2, nil
	}
	r := generate(context.Background(), options{concurrency: 1, requests: 50, duration: time.Minute}, call)
	if calls != 50 || r.Requests != 45 || r.Texts != 90 || r.Errors["transport"] != 5 {
		t.Fatalf("calls=%d report=%+v", calls, r)
	}
}

func TestOpenLoopIsBoundedByTime(t *testing.T) {
	call := func(context.Context, int) (int, error) { return 1, nil }
	start := time.Now()
	r := generate(context.Background(), options{concurrency: 4, rate: 100, requests: 1_000_000, duration: 200 * time.Millisecond}, call)
	if time.Since(start) > 5*time.Second || r.Requests == 0 || r.Requests > 30 {
		t.Fatalf("took %v, report %+v", time.Since(start), r)
	}
}

func TestFlagsRequireACorpus(t *testing.T) {
	if _, err := parseFlags(nil); err == nil {
		t.Fatal("want error without -corpus")
	}
	path := filepath.Join(t.TempDir(), "c.txt")
	if err := os.WriteFile(path, []byte("one\n\ntwo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	texts, err := readCorpus(path)
	if err != nil || len(texts) != 2 {
		t.Fatalf("texts=%v err=%v", texts, err)
	}
}
