// peerbench: the client side of tools/bench-peers. It measures RabbitMQ (AMQP 0-9-1, via
// github.com/rabbitmq/amqp091-go) and NATS JetStream (via github.com/nats-io/nats.go) end
// to end with Courier's workload: one producer and one consumer (separate connections,
// goroutines of this process), N messages of B bytes over 127.0.0.1.
//
//	peerbench rabbitmq --url amqp://... --queue-type classic|quorum [common flags]
//	peerbench nats --url nats://... [common flags]
//	peerbench table < rows.jsonl   # the plain table of the JSON lines the runs print
//
// Each run prints one JSON line (a row) on stdout; progress and warnings go to stderr.
// Built by tools/bench-peers in GOPATH mode against Debian's golang-*-dev packages.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The process's own monotonic clock: every timestamp in a payload is nanoseconds since
// this instant, read through time.Since (Go's monotonic clock). Producer and consumer are
// goroutines of one process, so they share it.
var epoch = time.Now()

func nowNs() int64 { return int64(time.Since(epoch)) }

type common struct {
	label, durability string
	count, size       int
	window, prefetch  int
	ackEvery          int
	rate              int
	seconds           float64
	serverPid         int
	deadline          time.Duration
	note, machine     string
	cpuProfile        string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.label, "label", "", "system column of the row")
	fs.StringVar(&c.durability, "durability", "", "durability class column of the row")
	fs.IntVar(&c.count, "count", 200000, "messages in the throughput phase (0: skip it)")
	fs.IntVar(&c.size, "size", 100, "payload bytes (at least 16: send time and sequence number)")
	fs.IntVar(&c.window, "window", 8192, "publisher: most messages published and not yet confirmed")
	fs.IntVar(&c.prefetch, "prefetch", 1000, "consumer: most messages delivered and not yet acknowledged")
	fs.IntVar(&c.ackEvery, "ack-every", 100, "RabbitMQ consumer: multiple-ack every this many deliveries (and what is left every 5 ms)")
	fs.IntVar(&c.rate, "rate", 5000, "latency phase: messages per second (0: skip the phase)")
	fs.Float64Var(&c.seconds, "seconds", 5, "latency phase: duration")
	fs.IntVar(&c.serverPid, "server-pid", 0, "server process whose CPU time is reported (0: none)")
	fs.DurationVar(&c.deadline, "deadline", 120*time.Second, "give up on a phase after this long")
	fs.StringVar(&c.note, "note", "", "free text added to the row")
	fs.StringVar(&c.machine, "machine", "", "machine description added to the row")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the client's CPU profile (throughput phase) to this file")
}

// One phase's traffic: what the producer and consumer of a system must do.
type system interface {
	// setup creates a fresh queue/stream for a phase; teardown removes it.
	setup(phase string) error
	teardown() error
	// startConsumer begins consuming; onMsg is called once per delivery with its payload and
	// returns nothing; the consumer acknowledges by itself. finish() makes sure every ack
	// sent so far has reached the server (a round trip) and stops consuming.
	startConsumer(onMsg func(payload []byte, redelivered bool)) (finish func() error, err error)
	// startProducer returns publish(payload) (blocks while the window is full) and
	// flush() for the end of a burst, and delivers each confirmation's sequence number
	// (0-based, in publish order) to onConfirm.
	startProducer(onConfirm func(seq int64)) (publish func(payload []byte) error, flush func() error, closeFn func() error, err error)
	// leftover describes the queue's (stream's) state at the end, for the row's JSON.
	leftover() (string, error)
}

type row struct {
	System        string   `json:"system"`
	Durability    string   `json:"durability"`
	MsgsPerSec    *float64 `json:"msg_per_s"`
	P50Ms         *float64 `json:"p50_ms"`
	P99Ms         *float64 `json:"p99_ms"`
	P999Ms        *float64 `json:"p99_9_ms"`
	Count         int      `json:"count,omitempty"`
	Size          int      `json:"size"`
	ElapsedS      float64  `json:"elapsed_s,omitempty"`
	ConfirmedS    float64  `json:"all_confirmed_s,omitempty"`
	ConsumedS     float64  `json:"all_consumed_s,omitempty"`
	Rate          int      `json:"latency_rate,omitempty"`
	LatencyMsgs   int      `json:"latency_messages,omitempty"`
	ConfirmP50Ms  *float64 `json:"confirm_p50_ms,omitempty"`
	ConfirmP99Ms  *float64 `json:"confirm_p99_ms,omitempty"`
	ConfirmP999Ms *float64 `json:"confirm_p99_9_ms,omitempty"`
	ServerCPU     *float64 `json:"server_cpu_cores,omitempty"`
	ClientCPU     *float64 `json:"client_cpu_cores,omitempty"`
	OtherCPU      *float64 `json:"other_cpu_cores,omitempty"`
	StealCPU      *float64 `json:"steal_cpu_cores,omitempty"`
	Window        int      `json:"publisher_window"`
	Prefetch      int      `json:"consumer_prefetch"`
	Redelivered   int64    `json:"redelivered"`
	Duplicates    int64    `json:"duplicates"`
	Leftover      string   `json:"leftover,omitempty"`
	Client        string   `json:"client"`
	Note          string   `json:"note,omitempty"`
	Machine       string   `json:"machine,omitempty"`
}

func f64(v float64) *float64 { return &v }

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "   [peerbench] "+format+"\n", args...)
}

// ---- CPU accounting --------------------------------------------------------------------

var clkTck = 100.0 // USER_HZ; 100 on Linux x86-64

func procCPU(pid int) (float64, bool) {
	if pid <= 0 {
		return 0, false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is the state (field 3); utime is field 14, stime field 15.
	if len(fields) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (u + st) / clkTck, true
}

// machineBusy: CPU seconds all processors spent busy so far (from /proc/stat).
func machineBusy() (float64, bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line := strings.SplitN(string(data), "\n", 2)[0]
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 7 { // idle, iowait; steal, guest (already in user)
			continue
		}
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy / clkTck, true
}

// machineSteal: CPU seconds the hypervisor gave to others while this machine wanted them.
func machineSteal() (float64, bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	x, _ := strconv.ParseFloat(f[8], 64)
	return x / clkTck, true
}

func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// ---- the two phases ----------------------------------------------------------------------

type tracker struct {
	mu          sync.Mutex
	seen        []byte // one byte per sequence number: delivered at least once
	delivered   int64  // distinct sequence numbers delivered
	redelivered int64
	duplicates  int64
	latencies   []int64 // publish (intended) -> consume, ns; latency phase only
	recordLat   bool
	done        chan struct{}
	doneAt      time.Time // when the last distinct message was consumed
	total       int64
}

func newTracker(total int, recordLat bool) *tracker {
	t := &tracker{seen: make([]byte, total), total: int64(total), recordLat: recordLat, done: make(chan struct{})}
	if recordLat {
		t.latencies = make([]int64, 0, total)
	}
	return t
}

func (t *tracker) onMsg(payload []byte, redelivered bool) {
	now := nowNs()
	if len(payload) < 16 {
		return
	}
	sent := int64(binary.LittleEndian.Uint64(payload[0:8]))
	seq := int64(binary.LittleEndian.Uint64(payload[8:16]))
	t.mu.Lock()
	defer t.mu.Unlock()
	if redelivered {
		t.redelivered++
	}
	if seq < 0 || seq >= t.total {
		return
	}
	if t.seen[seq] != 0 {
		t.duplicates++
		return
	}
	t.seen[seq] = 1
	t.delivered++
	if t.recordLat {
		t.latencies = append(t.latencies, now-sent)
	}
	if t.delivered == t.total {
		t.doneAt = time.Now()
		close(t.done)
	}
}

type confirmTracker struct {
	mu        sync.Mutex
	confirmed int64
	total     int64
	intended  []int64 // latency phase: intended send time per sequence number
	latencies []int64
	done      chan struct{}
	doneAt    time.Time // when the last confirmation arrived
}

func (c *confirmTracker) onConfirm(seq int64) {
	now := nowNs()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.confirmed++
	if c.intended != nil && seq >= 0 && seq < int64(len(c.intended)) {
		c.latencies = append(c.latencies, now-c.intended[seq])
	}
	if c.confirmed == c.total {
		c.doneAt = time.Now()
		close(c.done)
	}
}

func fillPayload(buf []byte, sentNs, seq int64) {
	binary.LittleEndian.PutUint64(buf[0:8], uint64(sentNs))
	binary.LittleEndian.PutUint64(buf[8:16], uint64(seq))
}

func waitBoth(t *tracker, c *confirmTracker, deadline time.Duration) error {
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for _, ch := range []chan struct{}{c.done, t.done} {
		select {
		case <-ch:
		case <-timer.C:
			t.mu.Lock()
			c.mu.Lock()
			msg := fmt.Sprintf("deadline %v passed: %d of %d confirmed, %d of %d consumed", deadline, c.confirmed, c.total, t.delivered, t.total)
			c.mu.Unlock()
			t.mu.Unlock()
			return fmt.Errorf("%s", msg)
		}
	}
	return nil
}

// throughput: publish count messages as fast as the window allows; the clock runs from the
// first publish until every message is confirmed to the producer and consumed and
// acknowledged by the consumer (the acknowledgements' arrival at the server checked by a
// round trip).
func throughput(sys system, c *common, r *row) error {
	if err := sys.setup("throughput"); err != nil {
		return err
	}
	defer sys.teardown()
	t := newTracker(c.count, false)
	ct := &confirmTracker{total: int64(c.count), done: make(chan struct{})}
	finish, err := sys.startConsumer(t.onMsg)
	if err != nil {
		return err
	}
	publish, flush, closeP, err := sys.startProducer(ct.onConfirm)
	if err != nil {
		return err
	}
	buf := make([]byte, c.size)
	if c.cpuProfile != "" {
		if f, err := os.Create(c.cpuProfile); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	srv0, srvOK := procCPU(c.serverPid)
	cli0 := selfCPU()
	all0, allOK := machineBusy()
	steal0, _ := machineSteal()
	start := time.Now()
	const burst = 256 // flush the client's write buffer at least this often
	for i := 0; i < c.count; i++ {
		fillPayload(buf, nowNs(), int64(i))
		if err := publish(buf); err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
		if i%burst == burst-1 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := waitBoth(t, ct, c.deadline); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return fmt.Errorf("consumer finish: %w", err)
	}
	elapsed := time.Since(start)
	cli1 := selfCPU()
	srv1, _ := procCPU(c.serverPid)
	all1, _ := machineBusy()
	steal1, _ := machineSteal()
	if err := closeP(); err != nil {
		return err
	}
	r.MsgsPerSec = f64(float64(c.count) / elapsed.Seconds())
	r.Count = c.count
	r.ElapsedS = round(elapsed.Seconds(), 3)
	if srvOK {
		r.ServerCPU = f64(round((srv1-srv0)/elapsed.Seconds(), 2))
	}
	r.ClientCPU = f64(round((cli1-cli0)/elapsed.Seconds(), 2))
	if allOK && srvOK {
		// Everything else the machine did meanwhile (other processes, the kernel's
		// threads): more than a little means the figure is low.
		r.OtherCPU = f64(math.Max(0, round((all1-all0-(srv1-srv0)-(cli1-cli0))/elapsed.Seconds(), 2)))
	}
	r.StealCPU = f64(round((steal1-steal0)/elapsed.Seconds(), 2))
	r.ConfirmedS = round(ct.doneAt.Sub(start).Seconds(), 3)
	r.ConsumedS = round(t.doneAt.Sub(start).Seconds(), 3)
	r.Redelivered += t.redelivered
	r.Duplicates += t.duplicates
	if left, err := sys.leftover(); err == nil {
		r.Leftover = left
	}
	logf("%s: %d messages in %.2f s = %.0f msg/s (all confirmed at %.2f s, all consumed at %.2f s; CPU cores: server %.2f, client %.2f, everything else %.2f, stolen by the hypervisor %.2f)",
		c.label, c.count, elapsed.Seconds(), *r.MsgsPerSec, r.ConfirmedS, r.ConsumedS, deref(r.ServerCPU), deref(r.ClientCPU), deref(r.OtherCPU), deref(r.StealCPU))
	if r.OtherCPU != nil && *r.OtherCPU > 0.25 {
		logf("warning: other work used %.2f cores during this phase: the figure is low", *r.OtherCPU)
	}
	if r.StealCPU != nil && *r.StealCPU > 0.25 {
		logf("warning: the hypervisor took %.2f cores (steal) during this phase: the figure is low", *r.StealCPU)
	}
	return nil
}

// latency: a constant-rate schedule for c.seconds; each message carries its intended send
// time, and latency is measured from it (a producer that falls behind is charged for it:
// no coordinated omission) to the consumer's receipt.
func latency(sys system, c *common, r *row) error {
	if err := sys.setup("latency"); err != nil {
		return err
	}
	defer sys.teardown()
	total := int(float64(c.rate) * c.seconds)
	t := newTracker(total, true)
	ct := &confirmTracker{total: int64(total), done: make(chan struct{}), intended: make([]int64, total), latencies: make([]int64, 0, total)}
	finish, err := sys.startConsumer(t.onMsg)
	if err != nil {
		return err
	}
	publish, flush, closeP, err := sys.startProducer(ct.onConfirm)
	if err != nil {
		return err
	}
	buf := make([]byte, c.size)
	interval := float64(time.Second) / float64(c.rate)
	start := nowNs() + int64(time.Millisecond)
	for i := 0; i < total; {
		due := int((float64(nowNs()-start) / interval)) + 1
		if due > total {
			due = total
		}
		for ; i < due; i++ {
			intended := start + int64(float64(i)*interval)
			ct.mu.Lock()
			ct.intended[i] = intended
			ct.mu.Unlock()
			fillPayload(buf, intended, int64(i))
			if err := publish(buf); err != nil {
				return fmt.Errorf("publish %d: %w", i, err)
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if i < total {
			next := start + int64(float64(i)*interval)
			if d := next - nowNs(); d > 0 {
				time.Sleep(time.Duration(d))
			}
		}
	}
	if err := waitBoth(t, ct, c.deadline); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return fmt.Errorf("consumer finish: %w", err)
	}
	if err := closeP(); err != nil {
		return err
	}
	p := percentiles(t.latencies)
	r.P50Ms, r.P99Ms, r.P999Ms = f64(p[0]), f64(p[1]), f64(p[2])
	q := percentiles(ct.latencies)
	r.ConfirmP50Ms, r.ConfirmP99Ms, r.ConfirmP999Ms = f64(q[0]), f64(q[1]), f64(q[2])
	r.Rate = c.rate
	r.LatencyMsgs = total
	r.Redelivered += t.redelivered
	r.Duplicates += t.duplicates
	logf("%s: %d msg/s for %.1f s: publish->consume p50 %.3f p99 %.3f p99.9 %.3f ms (publish->confirm p50 %.3f p99 %.3f ms)", c.label, c.rate, c.seconds, p[0], p[1], p[2], q[0], q[1])
	return nil
}

func percentiles(ns []int64) [3]float64 {
	var out [3]float64
	if len(ns) == 0 {
		return out
	}
	s := append([]int64(nil), ns...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	for k, p := range []float64{0.50, 0.99, 0.999} {
		idx := int(math.Ceil(p*float64(len(s)))) - 1
		if idx < 0 {
			idx = 0
		}
		out[k] = round(float64(s[idx])/1e6, 3)
	}
	return out
}

func round(v float64, digits int) float64 {
	m := math.Pow(10, float64(digits))
	return math.Round(v*m) / m
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func runBench(sys system, c *common, client string) {
	if c.size < 16 {
		fmt.Fprintln(os.Stderr, "peerbench: --size must be at least 16")
		os.Exit(2)
	}
	r := &row{System: c.label, Durability: c.durability, Size: c.size, Window: c.window, Prefetch: c.prefetch, Client: client, Note: c.note, Machine: c.machine}
	failed := false
	// A watchdog for whatever may hang (a lost acknowledgement, a stuck server): the row
	// so far, marked as failed, and exit.
	var mu sync.Mutex
	watch := func(phase string) *time.Timer {
		return time.AfterFunc(c.deadline+30*time.Second, func() {
			mu.Lock()
			logf("%s: %s phase still running after %v: giving up", c.label, phase, c.deadline+30*time.Second)
			r.Note = strings.TrimSpace(r.Note + " " + phase + " phase hung")
			out, _ := json.Marshal(r)
			fmt.Println(string(out))
			os.Exit(1)
		})
	}
	if c.count > 0 {
		w := watch("throughput")
		err := throughput(sys, c, r)
		w.Stop()
		if err != nil {
			logf("%s: throughput phase failed: %v", c.label, err)
			r.Note = strings.TrimSpace(r.Note + " throughput failed: " + err.Error())
			failed = true
		}
	}
	if c.rate > 0 && c.seconds > 0 {
		w := watch("latency")
		err := latency(sys, c, r)
		w.Stop()
		if err != nil {
			logf("%s: latency phase failed: %v", c.label, err)
			r.Note = strings.TrimSpace(r.Note + " latency failed: " + err.Error())
			failed = true
		}
	}
	mu.Lock()
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if failed {
		os.Exit(1)
	}
}

// ---- table -------------------------------------------------------------------------------

func table(in io.Reader) {
	var rows []row
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] != '{' {
			continue
		}
		var r row
		if json.Unmarshal([]byte(line), &r) == nil {
			rows = append(rows, r)
		}
	}
	header := []string{"system", "durability class", "msg/s", "p50 ms", "p99 ms", "p99.9 ms"}
	cells := [][]string{header}
	num := func(p *float64, format string) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf(format, *p)
	}
	for _, r := range rows {
		rate := "-"
		if r.MsgsPerSec != nil {
			rate = thousands(int64(math.Round(*r.MsgsPerSec)))
		}
		cells = append(cells, []string{r.System, r.Durability, rate, num(r.P50Ms, "%.2f"), num(r.P99Ms, "%.2f"), num(r.P999Ms, "%.2f")})
	}
	widths := make([]int, len(header))
	for _, c := range cells {
		for i, s := range c {
			if len(s) > widths[i] {
				widths[i] = len(s)
			}
		}
	}
	for n, c := range cells {
		parts := make([]string, len(c))
		for i, s := range c {
			if i >= 2 { // numbers: right-aligned
				parts[i] = strings.Repeat(" ", widths[i]-len(s)) + s
			} else {
				parts[i] = s + strings.Repeat(" ", widths[i]-len(s))
			}
		}
		fmt.Println(strings.Join(parts, " | "))
		if n == 0 {
			dashes := make([]string, len(c))
			for i := range c {
				dashes[i] = strings.Repeat("-", widths[i])
			}
			fmt.Println(strings.Join(dashes, "-|-"))
		}
	}
	fmt.Println()
	fmt.Println("CPU during the throughput phase, in cores (2 = the whole machine): server / client / everything else / stolen by the hypervisor")
	for _, r := range rows {
		fmt.Printf("  %s: %s / %s / %s / %s\n", r.System, num(r.ServerCPU, "%.2f"), num(r.ClientCPU, "%.2f"), num(r.OtherCPU, "%.2f"), num(r.StealCPU, "%.2f"))
	}
	for _, r := range rows {
		if strings.Contains(r.Note, "failed") || strings.Contains(r.Note, "hung") {
			fmt.Printf("  %s: %s\n", r.System, r.Note)
		}
	}
}

// syncProbe prints the median and p99 of 200 appends of 4 KiB each followed by fdatasync
// in DIR: how fast the disk under the servers' data syncs right now.
func syncProbe(dir string) {
	f, err := os.CreateTemp(dir, "syncprobe")
	if err != nil {
		fmt.Println("?")
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var ns []int64
	for i := 0; i < 200; i++ {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			fmt.Println("?")
			return
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			fmt.Println("?")
			return
		}
		ns = append(ns, int64(time.Since(t)))
	}
	p := percentiles(ns)
	fmt.Printf("append+fdatasync p50 %.0f µs, p99 %.0f µs\n", p[0]*1000, p[1]*1000)
}

func thousands(v int64) string {
	s := strconv.FormatInt(v, 10)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

// The systems' subcommands, registered by rabbit.go and natsjs.go (each can be left out
// with the build tag norabbitmq or nonats when its client library is not installed).
var subcommands = map[string]func(args []string){}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peerbench rabbitmq|nats|table [flags]")
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "table":
		table(os.Stdin)
	case "syncprobe":
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: peerbench syncprobe DIR")
			os.Exit(2)
		}
		syncProbe(args[0])
	default:
		if run, ok := subcommands[cmd]; ok {
			run(args)
			return
		}
		fmt.Fprintln(os.Stderr, "usage: peerbench rabbitmq|nats|table [flags]")
		os.Exit(2)
	}
}
