package events

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpSink publishes each record as one persistent message to an AMQP
// 0-9-1 exchange (RabbitMQ) on a channel in confirm mode: a batch counts
// as shipped only when the broker has confirmed every message of it. Any
// failure (a nack, a closed connection or channel, a timeout) drops the
// connection; the next attempt dials again, so a restarted broker is
// reconnected to by the retry loop.
type amqpSink struct {
	opts   *SinkOptions
	conn   *amqp.Connection
	ch     *amqp.Channel
	closed chan *amqp.Error // the channel's close notice (NotifyClose)
}

func newAMQP(o *SinkOptions) *amqpSink { return &amqpSink{opts: o} }

func (a *amqpSink) connect() error {
	conn, err := amqp.DialConfig(a.opts.URL, amqp.Config{
		Heartbeat: 10 * time.Second,
		Dial: func(network, addr string) (net.Conn, error) {
			return net.DialTimeout(network, addr, min(a.opts.Timeout, 30*time.Second))
		},
		Properties: amqp.Table{"connection_name": "gannet events " + a.opts.Name},
	})
	if err != nil {
		return fmt.Errorf("amqp dial: %w", err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return fmt.Errorf("amqp channel: %w", err)
	}
	a.conn, a.ch = conn, ch
	a.closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	return nil
}

func (a *amqpSink) ship(ctx context.Context, b *batch) error {
	if a.ch == nil || a.ch.IsClosed() || a.conn.IsClosed() {
		a.close()
		if err := a.connect(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, a.opts.Timeout)
	defer cancel()
	confirms := make([]*amqp.DeferredConfirmation, 0, len(b.entries))
	for i := range b.entries {
		e := &b.entries[i]
		dc, err := a.ch.PublishWithDeferredConfirmWithContext(ctx, a.opts.Exchange, routingKey(a.opts.RoutingKey, e), false, false,
			amqp.Publishing{
				ContentType:  "application/json",
				DeliveryMode: amqp.Persistent,
				MessageId:    string(e.uuid),
				Type:         string(e.typ),
				Timestamp:    time.Unix(e.sec, 0),
				AppId:        "gannet",
				Body:         e.json,
			})
		if err != nil {
			a.close()
			return fmt.Errorf("amqp publish: %w", err)
		}
		confirms = append(confirms, dc)
	}
	for _, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			a.close()
			return fmt.Errorf("amqp: waiting for the broker's confirmation: %w", err)
		}
		if !ok {
			reason := a.closeReason()
			a.close()
			if reason != nil {
				return fmt.Errorf("amqp: not confirmed: %w", reason)
			}
			return errors.New("amqp: the broker did not confirm a message (nack)")
		}
	}
	return nil
}

// closeReason is why the broker closed the channel (an exchange that
// does not exist, …), when it did.
func (a *amqpSink) closeReason() error {
	select {
	case e, ok := <-a.closed:
		if ok && e != nil {
			return e
		}
	case <-time.After(100 * time.Millisecond):
	}
	return nil
}

func (a *amqpSink) close() {
	if a.ch != nil {
		a.ch.Close()
		a.ch = nil
	}
	if a.conn != nil {
		a.conn.Close()
		a.conn = nil
	}
}
