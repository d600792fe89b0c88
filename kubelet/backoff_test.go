package kubelet

import (
	"testing"
	"time"
)

func TestBackoffDoublesToCapAndResets(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := NewBackoff(clock, backoffInitial, backoffMax, backoffReset)
	const key = "uid/app"
	if d := b.Wait(key); d != 0 {
		t.Fatalf("first attempt waits %s, want 0", d)
	}
	var delays []time.Duration
	for range 8 {
		b.Next(key)
		delays = append(delays, b.Delay(key))
		if d := b.Wait(key); d != b.Delay(key) {
			t.Fatalf("right after an attempt Wait = %s, want the full delay %s", d, b.Delay(key))
		}
		clock.Step(b.Delay(key) / 2)
		if d := b.Wait(key); d != b.Delay(key)/2 {
			t.Fatalf("half-way Wait = %s, want %s", d, b.Delay(key)/2)
		}
		clock.Step(b.Delay(key) / 2)
		if d := b.Wait(key); d != 0 {
			t.Fatalf("after the delay Wait = %s, want 0", d)
		}
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second, 300 * time.Second}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("delays %v, want %v", delays, want)
		}
	}
	// Ten quiet minutes since the last attempt: a fresh start.
	clock.Step(backoffReset)
	if d := b.Wait(key); d != 0 {
		t.Fatalf("after reset window Wait = %s", d)
	}
	b.Next(key)
	if b.Delay(key) != backoffInitial {
		t.Fatalf("delay after reset %s, want %s", b.Delay(key), backoffInitial)
	}
	b.Reset(key)
	if b.Wait(key) != 0 || b.Delay(key) != 0 {
		t.Fatal("Reset did not forget the key")
	}
	b.Next("uid/a")
	b.Next("other/a")
	b.ForgetPrefix("uid/")
	if b.Delay("uid/a") != 0 || b.Delay("other/a") == 0 {
		t.Fatal("ForgetPrefix forgot the wrong keys")
	}
}
