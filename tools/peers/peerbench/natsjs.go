//go:build !nonats

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

func init() {
	subcommands["nats"] = func(args []string) {
		fs := flag.NewFlagSet("nats", flag.ExitOnError)
		var c common
		c.register(fs)
		url := fs.String("url", "nats://127.0.0.1:4222", "NATS URL")
		retention := fs.String("retention", "workqueue", "stream retention: workqueue (acked messages are removed, like a queue) or limits")
		fs.Parse(args)
		runBench(newNats(*url, *retention, &c), &c, "Go nats.go 1.22.1 (Debian; core publish with the JetStream PubAck protocol)")
	}
}

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
		nc, err := nats.Connect(n.url, nats.Name(name), nats.MaxReconnects(-1),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					logf("%s: disconnected: %v", name, err)
				}
			}),
			nats.ReconnectHandler(func(*nats.Conn) { logf("%s: reconnected (in-flight acks may be lost)", name) }),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { logf("%s: %v", name, err) }))
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

// The producer publishes each message with its own reply subject and handles the
// JetStream PubAck (a JSON reply) itself: this is the protocol of nats.go's PublishAsync,
// whose 1.22 version draws each reply token at random (6 base-62 characters) without
// checking the ones pending, so with 8,192 in flight two publishes share a token in about
// one run of 200,000 in 35 and the earlier future never completes (a run here hung so).
// Here the token is the message's sequence number.
func (n *natsJS) startProducer(onConfirm func(int64)) (func([]byte) error, func() error, func() error, error) {
	nc, err := n.connect("peerbench-producer")
	if err != nil {
		return nil, nil, nil, err
	}
	n.conns = append(n.conns, nc)
	var errMu sync.Mutex
	var pubErrs int
	var firstErr error
	sem := make(chan struct{}, n.c.window)
	prefix := nats.NewInbox() + "."
	sub, err := nc.Subscribe(prefix+"*", func(m *nats.Msg) {
		seq, err := strconv.ParseInt(m.Subject[len(prefix):], 10, 64)
		if err != nil {
			return
		}
		var pa struct {
			Stream string `json:"stream"`
			Seq    uint64 `json:"seq"`
			Error  *struct {
				Code        int    `json:"code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if jerr := json.Unmarshal(m.Data, &pa); jerr != nil || pa.Error != nil || pa.Stream == "" {
			errMu.Lock()
			pubErrs++
			if firstErr == nil {
				if pa.Error != nil {
					firstErr = fmt.Errorf("%d %s", pa.Error.Code, pa.Error.Description)
				} else {
					firstErr = fmt.Errorf("not a PubAck: %q", m.Data)
				}
			}
			errMu.Unlock()
		}
		onConfirm(seq)
		<-sem
	})
	if err != nil {
		return nil, nil, nil, err
	}
	sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil { // the subscription is in place before any publish
		return nil, nil, nil, err
	}
	var next int64
	msg := &nats.Msg{Subject: n.subj}
	publish := func(body []byte) error {
		select { // at most window publishes without their PubAck
		case sem <- struct{}{}:
		case <-time.After(n.c.deadline):
			return fmt.Errorf("no PubAck for %v with %d in flight", n.c.deadline, n.c.window)
		}
		msg.Reply = prefix + strconv.FormatInt(next, 10)
		msg.Data = body
		next++
		return nc.PublishMsg(msg) // copies the message into the connection's buffer
	}
	flush := func() error { return nil } // nats.go's flusher writes on its own
	closeFn := func() error {
		sub.Unsubscribe()
		errMu.Lock()
		defer errMu.Unlock()
		if pubErrs > 0 {
			return fmt.Errorf("%d publishes failed, first: %v", pubErrs, firstErr)
		}
		return nil
	}
	return publish, flush, closeFn, nil
}
