// bintree.go: Go twin of bintree.c (binary-trees, benchmarks game). Go cannot free:
// its collector reclaims the trees, so this compares Go's whole memory management with
// explicit malloc/free. Prints the median over RUNS of the whole program's time:
//
//	bintree_ms MEDIAN ms
package main

import (
	"fmt"
	"os"
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

func arg(i, def int) int {
	if len(os.Args) > i {
		v, err := strconv.Atoi(os.Args[i])
		if err != nil || v <= 0 {
			fmt.Fprintln(os.Stderr, "usage: gobench-bintree [DEPTH [RUNS]]")
			os.Exit(2)
		}
		return v
	}
	return def
}

func main() {
	depth, runs := arg(1, 18), arg(2, 5)
	if depth < 6 {
		depth = 6
	}
	ms := make([]float64, runs)
	sum := 0
	for r := range ms {
		t0 := time.Now()
		sum = run(depth)
		ms[r] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	sort.Float64s(ms)
	fmt.Fprintf(os.Stderr, "bintree go depth %d: checksum %d\n", depth, sum)
	fmt.Printf("bintree_ms %.1f ms\n", ms[len(ms)/2])
}
