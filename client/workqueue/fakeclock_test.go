package workqueue

import (
	"time"

	"github.com/minik8s/minik8s/client/workqueue/clocktest"
)

// fakeClock is the shared manually advanced clock.
type fakeClock = clocktest.FakeClock

func newFakeClock() *fakeClock { return clocktest.New(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) }
