package http

import "context"

type idempotencyKeyCtx struct{}

// WithIdempotencyKey returns a context under which the Client sends key as
// the Idempotency-Key of the chat or message it creates: sending the create
// again with the same key answers the original instead of creating another.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyCtx{}, key)
}

func idempotencyKeyOf(ctx context.Context) string {
	k, _ := ctx.Value(idempotencyKeyCtx{}).(string)
	return k
}
