// Package logging builds the gateway's JSON logger. Its handlers add what the
// context knows about the request to every record: the request id, and the
// trace_id and span_id of the current span when the request is traced. Code
// only has to log with the *Context methods (logger.InfoContext(ctx, ...))
// to get them.
package logging

import (
	"context"
	"io"
	"log/slog"

	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
)

// New returns a JSON logger writing to w at the given level.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(requestIDHandler{traceHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})}})
}

// requestIDHandler adds a request_id attribute to records logged with a
// context that carries one.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestid.FromContext(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
