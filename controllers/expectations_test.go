package controllers

import (
	"testing"
	"time"
)

func TestExpectations(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	e := NewExpectations()
	e.now = func() time.Time { return now }
	steps := []struct {
		do   func()
		want bool
	}{
		{func() {}, true}, // nothing recorded
		{func() { e.ExpectCreations("a", 2) }, false},
		{func() { e.CreationObserved("a") }, false},
		{func() { e.CreationObserved("b") }, false}, // another key does not count
		{func() { e.CreationObserved("a") }, true},
		{func() { e.CreationObserved("a") }, true}, // extra observations are harmless
		{func() { e.ExpectDeletions("a", []string{"ns/p1", "ns/p2"}) }, false},
		{func() { e.DeletionObserved("a", "ns/p1"); e.DeletionObserved("a", "ns/p1") }, false}, // same pod twice counts once
		{func() { e.DeletionObserved("a", "ns/p2") }, true},
		{func() { e.ExpectCreations("a", 5); e.LowerCreations("a", 5) }, true},
		{func() { e.ExpectCreations("a", 1) }, false},
		{func() { now = now.Add(ExpectationsTimeout + time.Second) }, true}, // stale records expire
		{func() { e.ExpectCreations("a", 1); e.Forget("a") }, true},
	}
	for i, s := range steps {
		s.do()
		if got := e.Satisfied("a"); got != s.want {
			t.Fatalf("step %d: Satisfied = %v, want %v", i, got, s.want)
		}
	}
}
