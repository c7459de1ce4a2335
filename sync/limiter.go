package sync

import (
	"context"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/types"
)

// defaultPause is how long pulls pause when a registry reports a low remaining quota
// without saying how fast it refills.
const defaultPause = time.Minute

// maxPause bounds one pause; the next pull's answer says whether to pause again.
const maxPause = 30 * time.Minute

// registryLimiter implements types.RequestLimiter for a sync: at most perRegistry requests
// awaiting an answer per registry, and manifest pulls paused while a registry's
// rate-limit headers say fewer than min pulls remain.
type registryLimiter struct {
	perRegistry int
	min         int
	// now and sleep are time.Now and a context-aware sleep; tests replace them.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu   gosync.Mutex
	regs map[string]*registryState
}

type registryState struct {
	slots       chan struct{} // nil: unbounded
	pausedUntil time.Time
}

var _ types.RequestLimiter = (*registryLimiter)(nil)

func newRegistryLimiter(perRegistry, min int) *registryLimiter {
	return &registryLimiter{perRegistry: perRegistry, min: min, now: time.Now, sleep: ctxio.Sleep, regs: map[string]*registryState{}}
}

func (l *registryLimiter) state(registry string) *registryState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.regs[registry]
	if st == nil {
		st = &registryState{}
		if l.perRegistry > 0 {
			st.slots = make(chan struct{}, l.perRegistry)
		}
		l.regs[registry] = st
	}
	return st
}

// Start implements types.RequestLimiter.
func (l *registryLimiter) Start(ctx context.Context, registry string, pull bool) (func(func(string) string), error) {
	st := l.state(registry)
	for pull {
		l.mu.Lock()
		wait := st.pausedUntil.Sub(l.now())
		l.mu.Unlock()
		if wait <= 0 {
			break
		}
		if err := l.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
	if st.slots != nil {
		select {
		case st.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var once gosync.Once
	return func(header func(string) string) {
		once.Do(func() {
			if st.slots != nil {
				<-st.slots
			}
			if header != nil && l.min > 0 {
				l.observe(registry, st, header)
			}
		})
	}, nil
}

// observe reads the rate-limit headers of a response (Docker Hub: "ratelimit-remaining:
// 7;w=21600", "ratelimit-limit: 100;w=21600") and pauses pulls when fewer than l.min remain,
// for as long as the window needs to give back the missing pulls.
func (l *registryLimiter) observe(registry string, st *registryState, header func(string) string) {
	remaining, window, ok := parseRateLimit(header("RateLimit-Remaining"))
	if !ok || remaining >= l.min {
		return
	}
	limit, _, _ := parseRateLimit(header("RateLimit-Limit"))
	pause := defaultPause
	if limit > 0 && window > 0 {
		pause = time.Duration(l.min-remaining) * window / time.Duration(limit)
	}
	pause = min(max(pause, time.Second), maxPause)
	l.mu.Lock()
	now := l.now()
	wasPaused := st.pausedUntil.After(now)
	if until := now.Add(pause); until.After(st.pausedUntil) {
		st.pausedUntil = until
	}
	l.mu.Unlock()
	if !wasPaused {
		logrus.WithFields(logrus.Fields{"registry": registry, "remaining": remaining, "limit": limit}).
			Warnf("%s: %d pulls left in the rate-limit window (below the minimum of %d); pausing pulls for %s", registry, remaining, l.min, pause.Round(time.Second))
	}
}

// parseRateLimit parses "N" or "N;w=SECONDS".
func parseRateLimit(v string) (n int, window time.Duration, ok bool) {
	num, params, _ := strings.Cut(strings.TrimSpace(v), ";")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 0 {
		return 0, 0, false
	}
	for _, p := range strings.Split(params, ";") {
		if k, val, found := strings.Cut(strings.TrimSpace(p), "="); found && k == "w" {
			if secs, err := strconv.Atoi(val); err == nil && secs > 0 {
				window = time.Duration(secs) * time.Second
			}
		}
	}
	return n, window, true
}
