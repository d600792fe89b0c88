// Package benchstat holds what the hack/bench-* programs print alongside
// their numbers: latency percentiles, the process's CPU time and the load
// average (a number measured while others used the cores means little
// without it).
package benchstat

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Percentiles formats p50/p90/p99/max (nearest rank) in milliseconds.
func Percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	p := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	ms := func(x time.Duration) string { return fmt.Sprintf("%.1fms", float64(x)/float64(time.Millisecond)) }
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s", ms(p(0.50)), ms(p(0.90)), ms(p(0.99)), ms(s[len(s)-1]))
}

// ProcessCPU is the user+system CPU time of this process so far.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadAvg is the 1, 5 and 15 minute load average, or "unknown".
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
