package framework

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Parallelizer runs many small independent calls (one per node) on a
// bounded number of goroutines.
type Parallelizer struct {
	workers int
}

// NewParallelizer returns a Parallelizer using at most workers goroutines;
// workers <= 0 means GOMAXPROCS.
func NewParallelizer(workers int) Parallelizer {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return Parallelizer{workers: workers}
}

// Workers is the goroutine bound.
func (p Parallelizer) Workers() int { return p.workers }

// minPiecesPerWorker keeps tiny jobs on the calling goroutine: starting a
// goroutine costs about as much as filtering a dozen nodes.
const minPiecesPerWorker = 32

// Until calls fn(i) for i in [0, pieces), spread over up to Workers()
// goroutines that take chunks of consecutive indices, and returns when
// every call has returned. Once fn returns false, or ctx ends, no further
// pieces are started (calls already running finish). The caller's
// goroutine does one share of the work itself.
func (p Parallelizer) Until(ctx context.Context, pieces int, fn func(i int) bool) {
	if pieces <= 0 {
		return
	}
	workers := min(p.workers, (pieces+minPiecesPerWorker-1)/minPiecesPerWorker)
	done := ctx.Done()
	if workers <= 1 {
		for i := 0; i < pieces; i++ {
			if !fn(i) {
				return
			}
			if done != nil && i%64 == 63 {
				select {
				case <-done:
					return
				default:
				}
			}
		}
		return
	}
	// Chunks small enough that an early stop wastes little work, large
	// enough that the shared counter is not hammered.
	chunk := max(1, pieces/(workers*8))
	var next atomic.Int64
	var stop atomic.Bool
	work := func() {
		for !stop.Load() {
			start := int(next.Add(int64(chunk))) - chunk
			if start >= pieces {
				return
			}
			if done != nil {
				select {
				case <-done:
					stop.Store(true)
					return
				default:
				}
			}
			end := min(start+chunk, pieces)
			for i := start; i < end; i++ {
				if !fn(i) {
					stop.Store(true)
					return
				}
			}
		}
	}
	var wg sync.WaitGroup
	wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}
