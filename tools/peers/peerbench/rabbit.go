//go:build !norabbitmq

package main

import (
	"flag"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// corkConn batches the producer's socket writes: amqp091-go flushes its buffer after every
// frame (three per publish), so alone it makes three write(2) calls per message. While
// corked, writes go to a buffer that flush() (every 256 publishes, at the end of each paced
// burst, and before waiting for the window) hands to the kernel in one call. Other writes
// (heartbeats, synchronous methods) pass through in order.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		if len(c.buf) >= 256*1024 {
			return len(p), c.flushLocked()
		}
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *corkConn) flushLocked() error {
	for len(c.buf) > 0 {
		n, err := c.Conn.Write(c.buf)
		c.buf = c.buf[n:]
		if err != nil {
			c.buf = c.buf[:0]
			return err
		}
	}
	c.buf = c.buf[:0]
	return nil
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func init() {
	subcommands["rabbitmq"] = func(args []string) {
		fs := flag.NewFlagSet("rabbitmq", flag.ExitOnError)
		var c common
		c.register(fs)
		url := fs.String("url", "amqp://guest:guest@127.0.0.1:5672/", "AMQP URL")
		qtype := fs.String("queue-type", "classic", "classic or quorum")
		noCork := fs.Bool("unbatched-writes", false, "producer: one write(2) per AMQP frame, as amqp091-go does alone (default: one per burst)")
		fs.Parse(args)
		rb := newRabbit(*url, *qtype, &c)
		rb.noCork = *noCork
		runBench(rb, &c, "Go amqp091-go 1.5.0 (Debian)")
	}
}

type rabbit struct {
	url, qtype string
	c          *common
	noCork     bool
	admin      *amqp.Connection
	adminCh    *amqp.Channel
	queue      string
	conns      []*amqp.Connection
}

func newRabbit(url, qtype string, c *common) *rabbit {
	return &rabbit{url: url, qtype: qtype, c: c}
}

func (r *rabbit) dial(cork bool) (*amqp.Connection, *corkConn, error) {
	var cc *corkConn
	cfg := amqp.Config{Heartbeat: 10 * time.Second, Locale: "en_US"}
	base := amqp.DefaultDial(30 * time.Second)
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		conn, err := base(network, addr)
		if err != nil || !cork || r.noCork {
			return conn, err
		}
		cc = &corkConn{Conn: conn}
		return cc, nil
	}
	// The server may still be starting: retry for a while.
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := amqp.DialConfig(r.url, cfg)
		if err == nil {
			return conn, cc, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (r *rabbit) setup(phase string) error {
	if r.admin == nil {
		conn, _, err := r.dial(false)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		r.admin, r.adminCh = conn, ch
	}
	r.queue = fmt.Sprintf("peerbench-%s-%s", r.qtype, phase)
	if _, err := r.adminCh.QueueDelete(r.queue, false, false, false); err != nil {
		return err
	}
	_, err := r.adminCh.QueueDeclare(r.queue, true, false, false, false, amqp.Table{"x-queue-type": r.qtype})
	return err
}

func (r *rabbit) teardown() error {
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	_, err := r.adminCh.QueueDelete(r.queue, false, false, false)
	return err
}

func (r *rabbit) leftover() (string, error) {
	q, err := r.adminCh.QueueDeclarePassive(r.queue, true, false, false, false, amqp.Table{"x-queue-type": r.qtype})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("ready=%d consumers=%d", q.Messages, q.Consumers), nil
}

func (r *rabbit) startConsumer(onMsg func([]byte, bool)) (func() error, error) {
	conn, _, err := r.dial(false)
	if err != nil {
		return nil, err
	}
	r.conns = append(r.conns, conn)
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	// prefetch: at most this many unacknowledged deliveries on the consumer (per consumer).
	if err := ch.Qos(r.c.prefetch, 0, false); err != nil {
		return nil, err
	}
	deliveries, err := ch.Consume(r.queue, "peerbench", false, false, false, false, nil)
	if err != nil {
		return nil, err
	}
	finishReq := make(chan chan error)
	go func() {
		var pending int
		var last uint64
		ack := func() {
			if pending > 0 {
				ch.Ack(last, true) // multiple: everything up to last
				pending = 0
			}
		}
		// Multiple-ack every ackEvery deliveries, and what is left every 5 ms: acking each
		// time the local buffer runs dry cost a write(2) every few messages.
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case d, ok := <-deliveries:
				if !ok {
					return
				}
				onMsg(d.Body, d.Redelivered)
				pending++
				last = d.DeliveryTag
				if pending >= r.c.ackEvery {
					ack()
				}
			case <-ticker.C:
				ack()
			case reply := <-finishReq:
				ack()
				// A synchronous method on the same channel: its reply means the server's
				// channel process has handled every ack sent before it.
				_, err := ch.QueueDeclarePassive(r.queue, true, false, false, false, amqp.Table{"x-queue-type": r.qtype})
				reply <- err
				return
			}
		}
	}()
	return func() error {
		reply := make(chan error)
		finishReq <- reply
		return <-reply
	}, nil
}

func (r *rabbit) startProducer(onConfirm func(int64)) (func([]byte) error, func() error, func() error, error) {
	conn, cc, err := r.dial(true)
	if err != nil {
		return nil, nil, nil, err
	}
	r.conns = append(r.conns, conn)
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := ch.Confirm(false); err != nil {
		return nil, nil, nil, err
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, r.c.window+64))
	sem := make(chan struct{}, r.c.window)
	var nackMu sync.Mutex
	var nacks int
	go func() {
		for conf := range confirms {
			if !conf.Ack {
				nackMu.Lock()
				nacks++
				nackMu.Unlock()
			}
			onConfirm(int64(conf.DeliveryTag) - 1)
			<-sem
		}
	}()
	corked := false
	flush := func() error {
		if !corked || cc == nil {
			return nil
		}
		corked = false
		return cc.uncork()
	}
	publish := func(body []byte) error {
		select {
		case sem <- struct{}{}:
		default:
			// The window is full: send what is buffered, then wait for confirms.
			if err := flush(); err != nil {
				return err
			}
			sem <- struct{}{}
		}
		if !corked && cc != nil {
			cc.cork()
			corked = true
		}
		return ch.Publish("", r.queue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
	}
	closeFn := func() error {
		nackMu.Lock()
		n := nacks
		nackMu.Unlock()
		if n > 0 {
			return fmt.Errorf("%d publishes were nacked", n)
		}
		return nil
	}
	return publish, flush, closeFn, nil
}
