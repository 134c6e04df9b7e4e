package outbound

import (
	"testing"

	"gannet/engine/cluster"
	"gannet/internal/clustertest"
	"gannet/internal/redistest"
)

// sharedConns is SharedConns over one cluster.ConnLimiter for every path.
type sharedConns struct{ l *cluster.ConnLimiter }

func (s sharedConns) Acquire(Path) (func(), bool) {
	id, ok := s.l.Acquire()
	if !ok {
		return nil, false
	}
	return func() { s.l.Release(id) }, true
}

// TestSharedConnectionLimitAcrossManagers: two Managers (two nodes), each
// allowed 3 connections to the site, sharing a limit of 3 through one real
// redis-server: the receiver never sees more than 3 at once, and every
// message goes.
func TestSharedConnectionLimitAcrossManagers(t *testing.T) {
	srv := redistest.Need(t)
	rx := newTestReceiver(t, "127.0.0.1").Start()
	route := routeTo("dst.test", "127.0.0.1")
	var managers []*Manager
	for i := range 2 {
		c := clustertest.Node(t, srv.URL(0), "node-"+itoa(i))
		shared := sharedConns{c.ConnLimiter("site:dst.test", 3)}
		managers = append(managers, newTestManager(t, rx.Addr.Port(), func(o *Options) {
			o.Limits = func(Path) Limits { return Limits{Connections: 3, MaxDeliveriesPerConn: 2} }
			o.SharedConns = shared
		}))
	}
	const perManager = 30
	if n := deliverAtOnce(route, perManager, managers...); n != 2*perManager {
		t.Fatalf("%d of %d delivered", n, 2*perManager)
	}
	sessions, maxOpen := rx.stats()
	t.Logf("%d sessions, at most %d at once", sessions, maxOpen)
	if maxOpen > 3 {
		t.Errorf("receiver saw %d connections at once from the two nodes, shared limit 3", maxOpen)
	}
}
