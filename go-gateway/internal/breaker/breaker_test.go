package breaker

import (
	"errors"
	"testing"
	"time"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func newTestBreaker(threshold int) (*Breaker, *clock, *[]State) {
	c := &clock{now: time.Unix(0, 0)}
	var transitions []State
	b := New(Config{
		FailureThreshold: threshold,
		OpenTimeout:      5 * time.Second,
		Now:              c.Now,
		OnStateChange:    func(_, to State) { transitions = append(transitions, to) },
	})
	return b, c, &transitions
}

func call(t *testing.T, b *Breaker, o Outcome) {
	t.Helper()
	report, err := b.Allow()
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	report(o)
}

func TestOpensAfterConsecutiveFailures(t *testing.T) {
	b, _, _ := newTestBreaker(3)
	call(t, b, Failure)
	call(t, b, Failure)
	call(t, b, Success) // resets the count
	call(t, b, Failure)
	call(t, b, Failure)
	if b.State() != Closed {
		t.Fatalf("state = %s, want closed: failures were not consecutive", b.State())
	}
	call(t, b, Failure)
	if b.State() != Open {
		t.Fatalf("state = %s after 3 consecutive failures, want open", b.State())
	}
}

func TestOpenRejectsWithRetryAfter(t *testing.T) {
	b, c, _ := newTestBreaker(1)
	call(t, b, Failure)
	c.Advance(2 * time.Second)

	_, err := b.Allow()
	var open *OpenError
	if !errors.As(err, &open) || !errors.Is(err, ErrOpen) {
		t.Fatalf("err = %v, want *OpenError matching ErrOpen", err)
	}
	if open.RetryAfter != 3*time.Second {
		t.Errorf("RetryAfter = %v, want 3s", open.RetryAfter)
	}
}

func TestHalfOpenAllowsOneProbe(t *testing.T) {
	tests := []struct {
		name  string
		probe Outcome
		want  State
	}{
		{"success closes", Success, Closed},
		{"failure reopens", Failure, Open},
		{"ignored stays half-open", Ignore, HalfOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c, _ := newTestBreaker(1)
			call(t, b, Failure)
			c.Advance(5 * time.Second)

			report, err := b.Allow()
			if err != nil {
				t.Fatalf("probe refused: %v", err)
			}
			if b.State() != HalfOpen {
				t.Fatalf("state = %s during the probe, want half-open", b.State())
			}
			if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
				t.Errorf("a second concurrent probe was allowed (err = %v)", err)
			}
			report(tt.probe)
			if b.State() != tt.want {
				t.Errorf("state = %s, want %s", b.State(), tt.want)
			}
		})
	}
}

func TestLateReportsFromAnEarlierStateAreIgnored(t *testing.T) {
	b, c, _ := newTestBreaker(2)
	slow, err := b.Allow() // admitted while closed, answers late
	if err != nil {
		t.Fatal(err)
	}
	call(t, b, Failure)
	call(t, b, Failure) // opens
	c.Advance(5 * time.Second)
	probe, err := b.Allow() // half-open probe
	if err != nil {
		t.Fatal(err)
	}

	slow(Success) // must not close the breaker on the probe's behalf
	if b.State() != HalfOpen {
		t.Fatalf("state = %s, want half-open: a stale report changed it", b.State())
	}
	probe(Failure)
	if b.State() != Open {
		t.Fatalf("state = %s, want open", b.State())
	}
}

func TestStateChangesAreReported(t *testing.T) {
	b, c, transitions := newTestBreaker(1)
	call(t, b, Failure)
	c.Advance(5 * time.Second)
	call(t, b, Success)

	want := []State{Open, HalfOpen, Closed}
	if len(*transitions) != len(want) {
		t.Fatalf("transitions = %v, want %v", *transitions, want)
	}
	for i := range want {
		if (*transitions)[i] != want[i] {
			t.Fatalf("transitions = %v, want %v", *transitions, want)
		}
	}
}
