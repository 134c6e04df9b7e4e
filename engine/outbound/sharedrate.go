package outbound

import (
	"context"
	"time"
)

// SharedConnRate is a rate of new connections shared by the nodes of a
// cluster (max_connection_rate with limit_scope "cluster").
type SharedConnRate interface {
	// TakeConnection spends one token of the path's shared rate of new
	// connections: true, or false and how long until one may be there.
	TakeConnection(p Path) (bool, time.Duration)
}

// waitSharedConnRate waits for a token of the path's shared rate of new
// connections (Options.SharedConnRate), or until ctx ends.
func (m *Manager) waitSharedConnRate(ctx context.Context, p Path) error {
	s := m.opts.SharedConnRate
	if s == nil {
		return nil
	}
	for {
		ok, d := s.TakeConnection(p)
		if ok {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
