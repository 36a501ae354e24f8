// select: Go twin of select.c. Round trip between two goroutines that each
// wait in a two-case select: A sends i on ab, then selects over {<-ba,
// <-neverA}; B selects over {<-ab, <-neverB}, then sends the value + 1 on
// ba. Unbuffered channels, default GOMAXPROCS, an untimed warm-up of N/10
// round trips first.
//
// Output (stdout): select_ns, ns per round trip.
// Usage: gobench-select [N]   (default N = 600000)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const defaultN = 600000

var bad int

// runPhase runs n round trips; returns ns per round trip.
func runPhase(n int) float64 {
	ab := make(chan int)
	ba := make(chan int)
	neverA := make(chan int)
	neverB := make(chan int)
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	go func() { // B
		for i := 0; i < n; i++ {
			var v int
			select {
			case v = <-ab:
			case <-neverB:
				bad++
			}
			ba <- v + 1
		}
		wg.Done()
	}()
	go func() { // A
		for i := 0; i < n; i++ {
			ab <- i
			select {
			case w := <-ba:
				if w != i+1 {
					bad++
				}
			case <-neverA:
				bad++
			}
		}
		wg.Done()
	}()
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func parseN(def int) int {
	if len(os.Args) < 2 {
		return def
	}
	v, err := strconv.Atoi(os.Args[1])
	if err != nil || v <= 0 {
		fmt.Fprintf(os.Stderr, "usage: %s [N > 0]\n", os.Args[0])
		os.Exit(2)
	}
	return v
}

func main() {
	n := parseN(defaultN)
	fmt.Fprintf(os.Stderr, "select: N=%d, %d processors\n", n, runtime.GOMAXPROCS(0))
	warm := n / 10
	if warm < 1 {
		warm = 1
	}
	runPhase(warm)
	ns := runPhase(n)
	if bad != 0 {
		fmt.Fprintf(os.Stderr, "select: %d wrong cases or values\n", bad)
		os.Exit(1)
	}
	fmt.Printf("select_ns %.1f ns/op\n", ns)
}
