package engine

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"

	"gannet/engine/config"
	"gannet/resolver"
)

// liveResolver is the resolver delivery, MTA-STS, TLS reporting and DANE
// ask: a reload that changes [resolver] builds a new resolver.Resolver and
// swaps it in; lookups in flight finish on the old one, and its caches go
// with it.
type liveResolver struct {
	cur atomic.Pointer[resolver.Resolver]
}

// newResolver builds the resolver of cfg's [resolver].
func newResolver(cfg *config.Config, now func() time.Time) (*resolver.Resolver, error) {
	return resolver.New(resolver.Config{
		Nameservers: cfg.Resolver.Nameservers,
		Timeout:     cfg.Resolver.Timeout.Duration,
		TrustAD:     cfg.Resolver.TrustAD(),
		Now:         now,
	})
}

func (r *liveResolver) swap(n *resolver.Resolver) { r.cur.Store(n) }

func (r *liveResolver) Resolve(ctx context.Context, domain string) (*resolver.Route, error) {
	return r.cur.Load().Resolve(ctx, domain)
}

func (r *liveResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return r.cur.Load().LookupTXT(ctx, name)
}

func (r *liveResolver) LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	return r.cur.Load().LookupAddrs(ctx, host)
}

func (r *liveResolver) LookupTLSA(ctx context.Context, host string, port int) (resolver.TLSAResult, error) {
	return r.cur.Load().LookupTLSA(ctx, host, port)
}

func (r *liveResolver) Nameservers() []string { return r.cur.Load().Nameservers() }
