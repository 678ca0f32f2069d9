package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

type natsJS struct {
	url, retention string
	c              *common
	admin          *nats.Conn
	adminJS        nats.JetStreamContext
	stream, subj   string
	durable        string
	conns          []*nats.Conn
}

func newNats(url, retention string, c *common) *natsJS {
	return &natsJS{url: url, retention: retention, c: c}
}

func (n *natsJS) connect(name string) (*nats.Conn, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		nc, err := nats.Connect(n.url, nats.Name(name), nats.MaxReconnects(-1))
		if err == nil {
			return nc, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (n *natsJS) setup(phase string) error {
	if n.admin == nil {
		nc, err := n.connect("peerbench-admin")
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		js, err := nc.JetStream()
		if err != nil {
			return err
		}
		n.admin, n.adminJS = nc, js
	}
	n.stream = "PEERBENCH_" + phase
	n.subj = "peerbench." + phase
	n.durable = "peerbench-consumer"
	if err := n.adminJS.DeleteStream(n.stream); err != nil && !errors.Is(err, nats.ErrStreamNotFound) {
		return err
	}
	retention := nats.WorkQueuePolicy
	if n.retention == "limits" {
		retention = nats.LimitsPolicy
	}
	// JetStream may still be starting: retry stream creation for a while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := n.adminJS.AddStream(&nats.StreamConfig{
			Name:      n.stream,
			Subjects:  []string{n.subj},
			Storage:   nats.FileStorage,
			Retention: retention,
			Replicas:  1,
		})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("add stream: %w", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (n *natsJS) teardown() error {
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = nil
	return n.adminJS.DeleteStream(n.stream)
}

func (n *natsJS) leftover() (string, error) {
	si, err := n.adminJS.StreamInfo(n.stream)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("stream_msgs=%d", si.State.Msgs), nil
}

func (n *natsJS) startConsumer(onMsg func([]byte, bool)) (func() error, error) {
	nc, err := n.connect("peerbench-consumer")
	if err != nil {
		return nil, err
	}
	n.conns = append(n.conns, nc)
	js, err := nc.JetStream()
	if err != nil {
		return nil, err
	}
	// A durable push consumer, explicit acks (each message acked on its own), at most
	// prefetch messages delivered and not yet acknowledged.
	sub, err := js.Subscribe(n.subj, func(m *nats.Msg) {
		redelivered := false
		if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
			redelivered = true
		}
		onMsg(m.Data, redelivered)
		m.Ack()
	}, nats.Durable(n.durable), nats.ManualAck(), nats.AckExplicit(), nats.MaxAckPending(n.c.prefetch),
		nats.DeliverAll(), nats.BindStream(n.stream))
	if err != nil {
		return nil, err
	}
	sub.SetPendingLimits(-1, -1)
	return func() error {
		// The round trip makes sure the server has every ack this connection sent; the
		// consumer then processes them (asynchronously): wait until none is pending.
		if err := nc.FlushTimeout(10 * time.Second); err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			ci, err := n.adminJS.ConsumerInfo(n.stream, n.durable)
			if err != nil {
				return err
			}
			if ci.NumAckPending == 0 && ci.NumPending == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("consumer still has %d unacknowledged, %d pending", ci.NumAckPending, ci.NumPending)
			}
			time.Sleep(time.Millisecond)
		}
		return sub.Unsubscribe()
	}, nil
}

func (n *natsJS) startProducer(onConfirm func(int64)) (func([]byte) error, func() error, func() error, error) {
	nc, err := n.connect("peerbench-producer")
	if err != nil {
		return nil, nil, nil, err
	}
	n.conns = append(n.conns, nc)
	var errMu sync.Mutex
	var pubErrs int
	var firstErr error
	js, err := nc.JetStream(nats.PublishAsyncMaxPending(n.c.window + 1))
	if err != nil {
		return nil, nil, nil, err
	}
	sem := make(chan struct{}, n.c.window)
	futures := make(chan nats.PubAckFuture, n.c.window+1)
	go func() {
		for seq := int64(0); ; seq++ {
			f, ok := <-futures
			if !ok {
				return
			}
			select {
			case <-f.Ok():
			case err := <-f.Err():
				errMu.Lock()
				pubErrs++
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
			onConfirm(seq)
			<-sem
		}
	}()
	publish := func(body []byte) error {
		sem <- struct{}{} // at most window publishes without their ack
		data := append([]byte(nil), body...)
		f, err := js.PublishAsync(n.subj, data, nats.StallWait(time.Minute))
		if err != nil {
			return err
		}
		futures <- f
		return nil
	}
	flush := func() error { return nil } // nats.go's flusher writes on its own
	closeFn := func() error {
		close(futures)
		errMu.Lock()
		defer errMu.Unlock()
		if pubErrs > 0 {
			return fmt.Errorf("%d publishes failed, first: %v", pubErrs, firstErr)
		}
		return nil
	}
	return publish, flush, closeFn, nil
}
