package cluster

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// exchange is what the shared admin rules (Rules) and the shared
// suppression list (Suppressions) have in common: a writer goroutine that
// sends the changes made here as soon as there are some (kicked) and again
// every probeInterval while Redis does not take them, and a reader
// goroutine subscribed to a channel, told of every (re)subscription, every
// message and every heartbeat without one.
type exchange struct {
	c       *Cluster
	channel string
	kick    chan struct{}
	stop    chan struct{}
	done    sync.WaitGroup
	started bool // under c.mu

	flush       func() bool // writes the pending changes; true when none is left
	onSubscribe func()      // the channel was (re)subscribed: messages may have been missed
	onMessage   func(payload string)
	onQuiet     func() // a heartbeat went by without a message
}

func newExchange(c *Cluster, channel string) *exchange {
	return &exchange{c: c, channel: channel, kick: make(chan struct{}, 1), stop: make(chan struct{})}
}

// start starts the writer and the reader, once.
func (x *exchange) start() {
	x.c.mu.Lock()
	x.started = true
	x.c.mu.Unlock()
	x.done.Add(2)
	go x.writer()
	go x.reader()
}

// halt stops them (the writer tries a last time), if started.
func (x *exchange) halt() {
	x.c.mu.Lock()
	started := x.started
	x.c.mu.Unlock()
	if started {
		close(x.stop)
		x.done.Wait()
	}
}

// changed wakes the writer.
func (x *exchange) changed() {
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

func (x *exchange) writer() {
	defer x.done.Done()
	retry := time.NewTicker(probeInterval)
	defer retry.Stop()
	for {
		select {
		case <-x.stop:
			x.flush() // a last try: a change made at shutdown reaches the others
			return
		case <-x.kick:
		case <-retry.C:
		}
		x.flush()
	}
}

func (x *exchange) reader() {
	defer x.done.Done()
	c := x.c
	ps := c.rdb.Subscribe(context.Background(), x.channel)
	defer ps.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-x.stop
		cancel()
		ps.Close() // ends a receive in progress at once
	}()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, c.opts.Heartbeat)
		switch m := msg.(type) {
		case *redis.Subscription:
			x.onSubscribe()
		case *redis.Message:
			x.onMessage(m.Payload)
		}
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			x.onQuiet()
		case ctx.Err() == nil:
			c.result(err)
			select { // go-redis reconnects and subscribes again on the next receive
			case <-x.stop:
			case <-time.After(probeInterval):
			}
		}
	}
}
