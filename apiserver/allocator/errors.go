package allocator

import (
	"errors"
	"fmt"
)

// Sentinel errors; match them with errors.Is. The concrete errors are
// *Error values whose message names the value and the range.
var (
	ErrAllocated  = errors.New("already allocated")
	ErrNotInRange = errors.New("not in the valid range")
	ErrFull       = errors.New("range is full")
	// ErrRangeChanged means etcd holds a bitmap for a different range
	// than this allocator was configured with (the flag changed); Repair
	// replaces it.
	ErrRangeChanged = errors.New("stored range differs from the configured range")
)

// Error is an allocation failure about one value (or the whole range).
type Error struct {
	Err   error  // one of the sentinels above
	What  string // "cluster IP" or "node port"
	Value string // "" for ErrFull
	Range string
}

func (e *Error) Error() string {
	switch e.Err {
	case ErrAllocated:
		return fmt.Sprintf("%s %s is already allocated", e.What, e.Value)
	case ErrNotInRange:
		return fmt.Sprintf("%s %s is not in the valid range %s", e.What, e.Value, e.Range)
	case ErrFull:
		return fmt.Sprintf("range %s is full: no %ss available", e.Range, e.What)
	}
	return fmt.Sprintf("%s %s (range %s): %v", e.What, e.Value, e.Range, e.Err)
}

// Unwrap makes errors.Is(err, ErrAllocated) and friends work.
func (e *Error) Unwrap() error { return e.Err }
