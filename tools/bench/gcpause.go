// gcpause.go: Go twin of gcpause.c: collector pauses, CPU share and allocation throughput
// with a large live heap that keeps changing.
//
//	gobench-gcpause [LIVE_MIB [SECONDS]]   (default 1024 MiB live, 10 s)
//
// 10,000 goroutines each own a table of K pointers to 1 KiB objects, K = LIVE_MIB MiB /
// (10,000 KiB), at least 1; each object's first word points back to its table. Once every
// table is full, for SECONDS each goroutine replaces a random slot (xorshift, seeded per
// goroutine) with a new object. The workers keep the time (a clock read every 64
// replacements): the first past SECONDS stops them all, and every 250 ms one of them reads
// the PauseNs ring (runtime.ReadMemStats); main only waits, since a sleeping main can wake
// tens of seconds late behind 10,000 runnable goroutines (seen: 46 s late in a 2 s window,
// after Go's run queues pushed it to the back). Default GOGC and GOMAXPROCS. Prints, over
// the cycles completed
// after the tables were full: gcpause_p99_us and gcpause_max_us (PauseNs entries: a cycle's
// stop-the-world pauses summed; only when a cycle completed), gcpause_numgc, gc_cpu_fraction (GCCPUFraction * 100,
// percent: since the program started, as of the last cycle) and alloc_mib_per_s.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	ng      = 10000
	objSize = 1024
	poll    = 250 * time.Millisecond
)

type table struct {
	slot []*obj
}

type obj struct {
	owner *table
	data  [objSize/8 - 1]uint64
}

var (
	kPerG             int
	t0                time.Time // set by main before it opens the gate
	windowNs          int64     // SECONDS in ns, likewise
	ready, gate, done sync.WaitGroup

	stop       atomic.Bool  // set once, by the first worker past the deadline
	tStop      atomic.Int64 // when, in ns since t0 (the winner of stop's swap writes it)
	totalCount atomic.Int64
	nextPoll   atomic.Int64 // ns since t0
	pollMu     sync.Mutex   // held by the worker reading the ring; guards stats, ps
	stats      runtime.MemStats
	ps         pauses
)

func newObj(t *table, x uint64) *obj {
	o := &obj{owner: t}
	o.data[0] = x
	return o
}

func worker(i int) {
	x := 0x9E3779B97F4A7C15 * uint64(i+1)
	t := &table{slot: make([]*obj, kPerG)}
	for j := range t.slot {
		t.slot[j] = newObj(t, x+uint64(j))
	}
	ready.Done()
	gate.Wait()

	k := uint64(len(t.slot))
	var n int64
	for !stop.Load() {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		t.slot[x%k] = newObj(t, x)
		if n++; n%64 != 0 {
			continue
		}
		now := time.Since(t0).Nanoseconds()
		if now >= windowNs {
			if !stop.Swap(true) {
				tStop.Store(now)
			}
			break
		}
		if now >= nextPoll.Load() && pollMu.TryLock() {
			if now >= nextPoll.Load() {
				ps.collect(&stats)
				nextPoll.Store(time.Since(t0).Nanoseconds() + poll.Nanoseconds())
			}
			pollMu.Unlock()
		}
	}
	totalCount.Add(n)
	done.Done()
}

type pauses struct {
	v          []uint64
	last, lost uint32
}

// collect reads memstats into ms and appends the PauseNs entries of the cycles completed
// since p.last.
func (p *pauses) collect(ms *runtime.MemStats) {
	runtime.ReadMemStats(ms)
	from, to := p.last, ms.NumGC
	if to-from > 256 {
		p.lost += to - from - 256
		from = to - 256
	}
	for c := from + 1; c <= to; c++ {
		p.v = append(p.v, ms.PauseNs[(c+255)%256])
	}
	p.last = to
}

func arg(i, def, max int) int {
	if len(os.Args) > i {
		v, err := strconv.Atoi(os.Args[i])
		if err != nil || v <= 0 || v > max {
			fmt.Fprintln(os.Stderr, "usage: gobench-gcpause [LIVE_MIB in 1..16384 [SECONDS in 1..3600]]")
			os.Exit(2)
		}
		return v
	}
	return def
}

// pct is the nearest-rank percentile q of sorted v (len(v) > 0), as bench_pct in bench.h.
func pct(v []uint64, q int) uint64 {
	k := (len(v)*q + 99) / 100
	if k < 1 {
		k = 1
	}
	return v[k-1]
}

func main() {
	liveMiB, seconds := arg(1, 1024, 16384), arg(2, 10, 3600)
	kPerG = (liveMiB << 20) / (ng * objSize)
	if kPerG < 1 {
		kPerG = 1
	}

	tSetup := time.Now()
	ready.Add(ng)
	gate.Add(1)
	done.Add(ng)
	for i := 0; i < ng; i++ {
		go worker(i)
	}
	ready.Wait()

	p, ms := &ps, &stats
	runtime.ReadMemStats(ms)
	p.last = ms.NumGC
	t0 = time.Now()
	fmt.Fprintf(os.Stderr, "gcpause go: %d goroutines x %d objects of %d B, setup %.0f ms, "+
		"HeapAlloc %d MiB, %d cycles so far\n", ng, kPerG, objSize,
		float64(t0.Sub(tSetup).Nanoseconds())/1e6, ms.HeapAlloc>>20, ms.NumGC)
	windowNs = int64(seconds) * 1e9
	nextPoll.Store(poll.Nanoseconds())
	gate.Done()
	done.Wait()
	p.collect(ms)

	secs := float64(tStop.Load()) / 1e9
	count := totalCount.Load()
	sort.Slice(p.v, func(i, j int) bool { return p.v[i] < p.v[j] })
	var p50, p99, max uint64
	if len(p.v) > 0 {
		p50, p99, max = pct(p.v, 50), pct(p.v, 99), p.v[len(p.v)-1]
	}
	fmt.Fprintf(os.Stderr, "gcpause go: %d objects in %.2f s; %d cycles (%d not in the ring), "+
		"pause p50 %.1f us, HeapAlloc %d MiB, HeapSys %d MiB, Sys %d MiB\n",
		count, secs, uint32(len(p.v))+p.lost, p.lost, float64(p50)/1e3, ms.HeapAlloc>>20,
		ms.HeapSys>>20, ms.Sys>>20)
	if len(p.v) == 0 {
		fmt.Fprintln(os.Stderr, "gcpause go: no collection completed in the window: "+
			"no gcpause_p99_us, gcpause_max_us")
	} else {
		fmt.Printf("gcpause_p99_us %.1f us\n", float64(p99)/1e3)
		fmt.Printf("gcpause_max_us %.1f us\n", float64(max)/1e3)
	}
	fmt.Printf("gcpause_numgc %d count\n", uint32(len(p.v))+p.lost)
	fmt.Printf("gc_cpu_fraction %.2f percent\n", ms.GCCPUFraction*100)
	fmt.Printf("alloc_mib_per_s %.1f MiB/s\n", float64(count)*objSize/(1<<20)/secs)
}
