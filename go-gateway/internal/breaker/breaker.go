// Package breaker is a small circuit breaker. When the core keeps failing
// (it is down, or too slow to answer within the deadline) the breaker opens
// and calls fail at once instead of each one waiting for its own timeout;
// that keeps the gateway responsive and stops it from piling retries onto a
// struggling core. After a cool-down one probe call is let through
// (half-open): its success closes the breaker, its failure opens it again.
package breaker

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// State is the breaker's state.
type State int

// The three states of a circuit breaker.
const (
	Closed State = iota
	HalfOpen
	Open
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	default:
		return fmt.Sprintf("State(%d)", int(s))
	}
}

// Outcome is what a call reports back to the breaker.
type Outcome int

const (
	// Success: the backend answered (an application error such as invalid
	// input still proves the backend is healthy).
	Success Outcome = iota
	// Failure: the backend is unreachable or too slow.
	Failure
	// Ignore: the result says nothing about the backend, for example the
	// client went away before the answer.
	Ignore
)

// ErrOpen is matched (with errors.Is) by every error returned while the
// breaker rejects calls.
var ErrOpen = errors.New("circuit breaker is open")

// OpenError is returned by Allow while the breaker rejects calls.
type OpenError struct {
	// RetryAfter is how long until the breaker lets a probe through.
	RetryAfter time.Duration
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("%v (next probe in %s)", ErrOpen, e.RetryAfter.Round(time.Millisecond))
}

func (e *OpenError) Unwrap() error { return ErrOpen }

// Config configures a Breaker.
type Config struct {
	// FailureThreshold consecutive failures open the breaker. Consecutive
	// (rather than a rate) keeps the rule easy to reason about: one success
	// in between proves the backend still answers.
	FailureThreshold int
	// OpenTimeout is how long the breaker stays open before probing.
	OpenTimeout time.Duration
	// Now returns the current time; nil means time.Now. Tests inject a clock.
	Now func() time.Time
	// OnStateChange, if set, is called on every transition, while the
	// breaker's lock is held: it must be quick and must not call the breaker.
	OnStateChange func(from, to State)
}

// Breaker is a circuit breaker, safe for concurrent use.
type Breaker struct {
	cfg Config

	mu sync.Mutex
	// generation changes on every state transition, so that outcomes of calls
	// admitted in an earlier state are not counted against the new one.
	generation    uint64
	state         State
	failures      int
	openUntil     time.Time
	probeInFlight bool
}

// New returns a closed breaker.
func New(cfg Config) *Breaker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Breaker{cfg: cfg}
}

// State returns the current state. An open breaker whose timeout has passed
// still reports Open until the next Allow moves it to HalfOpen.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Allow asks to make a call. It returns an *OpenError while the breaker
// rejects calls. Otherwise the caller must make the call and pass its
// outcome to the returned function exactly once.
func (b *Breaker) Allow() (report func(Outcome), err error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	now := b.cfg.Now()
	switch b.state {
	case Open:
		if now.Before(b.openUntil) {
			return nil, &OpenError{RetryAfter: b.openUntil.Sub(now)}
		}
		b.transition(HalfOpen, now)
		b.probeInFlight = true
	case HalfOpen:
		if b.probeInFlight {
			// One probe at a time: the backend has just been failing, so do
			// not send it a burst before it has proven itself.
			return nil, &OpenError{RetryAfter: b.cfg.OpenTimeout}
		}
		b.probeInFlight = true
	}

	generation := b.generation
	return func(o Outcome) { b.report(generation, o) }, nil
}

func (b *Breaker) report(generation uint64, o Outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if generation != b.generation {
		return
	}

	now := b.cfg.Now()
	switch b.state {
	case Closed:
		switch o {
		case Success:
			b.failures = 0
		case Failure:
			b.failures++
			if b.failures >= b.cfg.FailureThreshold {
				b.transition(Open, now)
			}
		}
	case HalfOpen:
		b.probeInFlight = false
		switch o {
		case Success:
			b.transition(Closed, now)
		case Failure:
			b.transition(Open, now)
		}
	}
}

// transition must be called with b.mu held.
func (b *Breaker) transition(to State, now time.Time) {
	from := b.state
	b.state = to
	b.generation++
	b.failures = 0
	b.probeInFlight = false
	if to == Open {
		b.openUntil = now.Add(b.cfg.OpenTimeout)
	}
	if b.cfg.OnStateChange != nil {
		b.cfg.OnStateChange(from, to)
	}
}
