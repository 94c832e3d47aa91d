package limits

// InFlight caps the number of requests handled at once across all clients.
// It protects the gateway and, more importantly, the core from a surge that
// every client's own rate limit would still allow in sum.
type InFlight struct {
	slots chan struct{} // nil: no limit
}

// NewInFlight returns a limiter admitting max concurrent requests; max <= 0
// means no limit.
func NewInFlight(max int) *InFlight {
	if max <= 0 {
		return &InFlight{}
	}
	return &InFlight{slots: make(chan struct{}, max)}
}

// TryAcquire takes a slot if one is free, without waiting. On success the
// caller must call release exactly once when the request is done.
func (f *InFlight) TryAcquire() (release func(), ok bool) {
	if f.slots == nil {
		return func() {}, true
	}
	select {
	case f.slots <- struct{}{}:
		return func() { <-f.slots }, true
	default:
		return nil, false
	}
}
