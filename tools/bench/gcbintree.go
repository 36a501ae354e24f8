// gcbintree.go: Go twin of gcbintree.c (binary-trees, benchmarks game, on the collector):
// the work of bintree.go with the metric names of gcbintree.c.
//
//	gobench-gcbintree [DEPTH [RUNS]]   (default depth 18, 5 runs; depth below 6 runs as 6)
//
// A stretch tree of DEPTH+1, a long-lived tree of DEPTH, then for d = 4, 6, ..., DEPTH,
// 2^(DEPTH-d+4) trees of depth d built, checked and dropped. Default GOGC. Prints:
//
//	gcbintree_ms MEDIAN ms          median over RUNS of one run's wall time
//	gcbintree_maxpause_us MAX us    longest runtime.MemStats.PauseNs entry (a cycle's
//	                                stop-the-world pauses summed) of the runs' cycles
//	                                (left out when no cycle completed)
//	gcbintree_numgc MEDIAN count    collections per run (median over RUNS)
//
// The PauseNs ring is read after each run; the checksum and GCCPUFraction go to stderr.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"
)

type node struct{ left, right *node }

func make_(d int) *node {
	if d > 0 {
		return &node{make_(d - 1), make_(d - 1)}
	}
	return &node{}
}

func (n *node) check() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

func run(max int) int {
	sum := make_(max + 1).check()
	long := make_(max)
	for d := 4; d <= max; d += 2 {
		iters := 1 << (max - d + 4)
		for i := 0; i < iters; i++ {
			sum += make_(d).check()
		}
	}
	return sum + long.check()
}

func arg(i, def, max int) int {
	if len(os.Args) > i {
		v, err := strconv.Atoi(os.Args[i])
		if err != nil || v <= 0 || v > max {
			fmt.Fprintln(os.Stderr, "usage: gobench-gcbintree [DEPTH in 1..24 [RUNS in 1..100]]")
			os.Exit(2)
		}
		return v
	}
	return def
}

// collectPauses appends the PauseNs entries of the cycles completed since cycle *last and
// moves *last to the current count; cycles that left the 256-entry ring count in *lost.
func collectPauses(ms *runtime.MemStats, last *uint32, pauses *[]uint64, lost *uint32) {
	runtime.ReadMemStats(ms)
	from, to := *last, ms.NumGC
	if to-from > 256 {
		*lost += to - from - 256
		from = to - 256
	}
	for c := from + 1; c <= to; c++ {
		*pauses = append(*pauses, ms.PauseNs[(c+255)%256])
	}
	*last = to
}

func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func main() {
	depth, runs := arg(1, 18, 24), arg(2, 5, 100)
	if depth < 6 {
		depth = 6
	}
	var ms runtime.MemStats
	var pauses []uint64
	var lost uint32
	runtime.ReadMemStats(&ms)
	last := ms.NumGC

	msRun := make([]float64, runs)
	gcRun := make([]float64, runs)
	sum := 0
	for r := 0; r < runs; r++ {
		gc0 := last
		t0 := time.Now()
		sum = run(depth)
		msRun[r] = float64(time.Since(t0).Nanoseconds()) / 1e6
		collectPauses(&ms, &last, &pauses, &lost)
		gcRun[r] = float64(last - gc0)
	}
	var maxpause uint64
	for _, p := range pauses {
		if p > maxpause {
			maxpause = p
		}
	}
	fmt.Fprintf(os.Stderr, "gcbintree go depth %d: checksum %d; %d cycles (%d not in the ring), "+
		"PauseTotalNs %d, GCCPUFraction %.4f, HeapSys %d MiB\n",
		depth, sum, uint32(len(pauses))+lost, lost, ms.PauseTotalNs, ms.GCCPUFraction,
		ms.HeapSys>>20)
	fmt.Printf("gcbintree_ms %.1f ms\n", median(msRun))
	if len(pauses) > 0 {
		fmt.Printf("gcbintree_maxpause_us %.1f us\n", float64(maxpause)/1e3)
	}
	numgc := median(gcRun)
	prec := 0
	if numgc != float64(int64(numgc)) {
		prec = 1
	}
	fmt.Printf("gcbintree_numgc %.*f count\n", prec, numgc)
}
