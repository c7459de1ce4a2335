package sync

import (
	"context"
	"testing"
	"time"

	"github.com/pkg/errors"
)

func TestLimiterBoundsRequestsPerRegistry(t *testing.T) {
	t.Parallel()
	l := newRegistryLimiter(2, 0)
	ctx := context.Background()
	var dones []func(func(string) string)
	for range 2 {
		done, err := l.Start(ctx, "a.example", false)
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Start(cancelled, "a.example", false); !errors.Is(err, context.Canceled) {
		t.Fatalf("third request to a full registry: %v, want it to wait (and see the cancellation)", err)
	}
	if done, err := l.Start(ctx, "b.example", true); err != nil {
		t.Fatalf("another registry has its own bound: %v", err)
	} else {
		done(nil)
	}
	dones[0](nil)
	dones[0](nil) // a second call must not free a second slot
	done, err := l.Start(ctx, "a.example", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Start(cancelled, "a.example", false); !errors.Is(err, context.Canceled) {
		t.Fatalf("the slot was released twice: %v", err)
	}
	done(nil)
	dones[1](nil)
}

func TestLimiterPausesPullsOnLowQuota(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var slept []time.Duration
	l := newRegistryLimiter(0, 10)
	l.now = func() time.Time { return now }
	l.sleep = func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		now = now.Add(d)
		return nil
	}
	ctx := context.Background()
	headers := func(remaining, limit string) func(string) string {
		return func(name string) string {
			return map[string]string{"RateLimit-Remaining": remaining, "RateLimit-Limit": limit}[name]
		}
	}
	step := func(pull bool, h func(string) string) {
		t.Helper()
		done, err := l.Start(ctx, "docker.io", pull)
		if err != nil {
			t.Fatal(err)
		}
		done(h)
	}
	step(false, headers("50;w=21600", "100;w=21600")) // plenty left: no pause
	step(true, nil)
	if len(slept) != 0 {
		t.Fatalf("paused with quota left: %v", slept)
	}
	step(false, headers("3;w=21600", "100;w=21600")) // a HEAD reports 3 left, 7 below the minimum
	step(false, nil)                                 // HEADs do not count against the quota: no pause
	if len(slept) != 0 {
		t.Fatalf("a HEAD paused: %v", slept)
	}
	step(true, headers("12;w=21600", "100;w=21600"))
	want := 7 * 216 * time.Second // 7 pulls, refilled one per 21600s/100
	if len(slept) != 1 || slept[0] != want {
		t.Fatalf("pull paused %v, want [%v]", slept, want)
	}
	step(true, nil)
	if len(slept) != 1 {
		t.Fatalf("paused again with 12 left: %v", slept)
	}
	step(false, headers("0", "")) // no window given: the default pause
	step(true, nil)
	if len(slept) != 2 || slept[1] != defaultPause {
		t.Fatalf("pauses %v, want a second one of %v", slept, defaultPause)
	}
}

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in     string
		n      int
		window time.Duration
		ok     bool
	}{
		{"76;w=21600", 76, 6 * time.Hour, true},
		{" 5 ", 5, 0, true},
		{"5;w=bad", 5, 0, true},
		{"", 0, 0, false},
		{"-1", 0, 0, false},
		{"many", 0, 0, false},
	}
	for _, tc := range cases {
		n, w, ok := parseRateLimit(tc.in)
		if n != tc.n || w != tc.window || ok != tc.ok {
			t.Errorf("parseRateLimit(%q) = %d, %v, %v; want %d, %v, %v", tc.in, n, w, ok, tc.n, tc.window, tc.ok)
		}
	}
}
