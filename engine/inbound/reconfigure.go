package inbound

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// Changes says what Reconfigure did, by listener name.
type Changes struct {
	Added   []string // new listen addresses, listening now
	Changed []string // same address, new settings: new connections get them
	Removed []string // their sockets drain, then close
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Added)+len(c.Changed)+len(c.Removed) == 0
}

// Reconfigure makes the running server's listeners those of cfgs (a
// reload). Listeners are matched by listen address:
//   - an address not served yet gets a new socket (a new gnet engine),
//     listening before Reconfigure returns;
//   - an address served with other settings keeps its socket and gets a
//     new listener: new connections are served with the new settings,
//     the connections already open are drained (421 4.3.2 at their next
//     command boundary; a transaction in progress finishes first);
//   - an address no longer configured is drained the same way, and its
//     socket is closed once its connections are gone or after drainTimeout.
//
// If a new socket cannot listen, nothing changes and the error says why.
// Before Start, the new configs simply replace the old ones.
// Listener settings are compared field by field; TLSConfig by identity.
func (s *Server) Reconfigure(cfgs []ListenerConfig, drainTimeout time.Duration) (Changes, error) {
	s.reconfMu.Lock()
	defer s.reconfMu.Unlock()
	var ch Changes
	s.mu.Lock()
	running, ended := s.started, s.stopped
	s.mu.Unlock()
	if ended {
		return ch, errors.New("inbound: server stopped")
	}
	names := map[string]bool{}
	raws := slices.Clone(cfgs)
	cfgs = slices.Clone(cfgs)
	for i := range cfgs {
		c, err := cfgs[i].withDefaults()
		if err != nil {
			return ch, err
		}
		if names[c.Name] {
			return ch, fmt.Errorf("inbound: two listeners named %q", c.Name)
		}
		names[c.Name] = true
		cfgs[i] = c
	}
	if !running {
		// Nothing listens yet: Start will listen on the new set.
		var socks []*socket
		for i, c := range cfgs {
			l := newListener(s, c)
			l.raw = raws[i]
			socks = append(socks, newSocket(s, l))
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.started {
			return ch, errors.New("inbound: server started during Reconfigure")
		}
		old := map[string]bool{}
		for _, k := range s.socks {
			old[k.cur.Load().name] = true
		}
		for _, c := range cfgs {
			if !old[c.Name] {
				ch.Added = append(ch.Added, c.Name)
			}
			delete(old, c.Name)
		}
		for n := range old {
			ch.Removed = append(ch.Removed, n)
		}
		s.socks = socks
		return ch, nil
	}
	// By listen string, in config order: two "127.0.0.1:0" listeners are
	// matched in turn.
	live := map[string][]*socket{}
	for _, k := range s.sockets() {
		if !k.isRemoved() {
			live[k.listen] = append(live[k.listen], k)
		}
	}
	type swap struct {
		k *socket
		l *listener
	}
	var (
		order   []*socket
		swaps   []swap
		started []*socket
	)
	for i, c := range cfgs {
		l := newListener(s, c)
		l.raw = raws[i]
		if ks := live[c.Listen]; len(ks) > 0 {
			k := ks[0]
			live[c.Listen] = ks[1:]
			order = append(order, k)
			if cur := k.cur.Load(); !sameListener(cur.raw, l.raw) {
				swaps = append(swaps, swap{k, l})
				ch.Changed = append(ch.Changed, c.Name)
			}
			continue
		}
		k := newSocket(s, l)
		if err := k.start(); err != nil {
			for _, n := range started {
				_ = n.stop(context.Background())
			}
			return Changes{}, err
		}
		started = append(started, k)
		order = append(order, k)
		ch.Added = append(ch.Added, c.Name)
	}
	for _, sw := range swaps {
		sw.k.replace(sw.l)
	}
	var gone []*socket
	for _, k := range s.sockets() {
		if slices.Contains(live[k.listen], k) {
			gone = append(gone, k)
			ch.Removed = append(ch.Removed, k.cur.Load().name)
		}
	}
	s.mu.Lock()
	var draining []*socket
	for _, k := range s.socks {
		if k.isRemoved() {
			draining = append(draining, k)
		}
	}
	s.socks = append(append(order, draining...), gone...)
	stopped := s.stopped
	s.mu.Unlock()
	for _, k := range gone {
		k.mu.Lock()
		k.removed = true
		k.mu.Unlock()
		for _, l := range k.listeners() {
			l.draining.Store(true)
		}
		k.drainIdle()
		if !stopped {
			go s.retire(k, drainTimeout)
		}
	}
	return ch, nil
}

// retire waits for the connections of a removed socket to finish, then
// stops its engine and forgets it.
func (s *Server) retire(k *socket, timeout time.Duration) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(timeout)
	last := time.Now()
	for k.openConns() > 0 && time.Now().Before(deadline) {
		<-t.C
		if time.Since(last) >= time.Second {
			k.drainIdle()
			last = time.Now()
		}
	}
	if n := k.openConns(); n > 0 {
		s.log.Warn("smtp listener removed: closing connections still open", "addr", k.listen, "connections", n)
	}
	if err := k.stop(context.Background()); err != nil {
		s.log.Warn("smtp listener removed", "addr", k.listen, "err", err)
	}
	s.mu.Lock()
	s.socks = slices.DeleteFunc(s.socks, func(x *socket) bool { return x == k })
	s.mu.Unlock()
	s.log.Info("smtp listener closed", "addr", k.listen)
}

// isRemoved reports whether a reload removed the socket (it drains).
func (k *socket) isRemoved() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.removed
}

// sameListener compares two listener settings; TLSConfig by identity.
func sameListener(a, b ListenerConfig) bool {
	if a.TLSConfig != b.TLSConfig {
		return false
	}
	a.TLSConfig, b.TLSConfig = nil, nil
	return reflect.DeepEqual(a, b)
}
