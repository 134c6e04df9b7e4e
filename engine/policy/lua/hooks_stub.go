package lua

import (
	"context"

	"gannet/engine/policy"
)

// TEMPORARY: replaced by the run-time implementation (merge of h-lua).

type Hooks struct{}

func (s *Script) Start(opts Options) (*Hooks, error) { return &Hooks{}, nil }
func (h *Hooks) Has(event string) bool                { return false }
func (h *Hooks) Close()                               {}
func (h *Hooks) Greeting(ctx context.Context, m GreetingMeta) (Greeting, error) {
	return Greeting{}, nil
}
func (h *Hooks) Decide(m policy.Message) (policy.Decision, error) { return policy.Decision{}, nil }
func (h *Hooks) DeliveryResult(ctx context.Context, r DeliveryResult, m DeliveryMeta) error {
	return nil
}
func (h *Hooks) HTTPRequest(ctx context.Context, r HTTPRequest) (*HTTPResponse, error) {
	return nil, nil
}
func (h *Hooks) Auth(ctx context.Context, user, password string, m AuthMeta) (AuthResult, error) {
	return AuthResult{}, nil
}
func (h *Hooks) QueueConfig(domain, tenant, campaign, routingDomain string) (QueueConfig, bool, error) {
	return QueueConfig{}, false, nil
}
func (h *Hooks) EgressPath(domain, source, site string) (EgressPath, bool, error) {
	return EgressPath{}, false, nil
}
