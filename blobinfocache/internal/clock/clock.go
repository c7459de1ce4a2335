// Package clock hands out strictly increasing timestamps for blob-info cache records.
package clock

import "time"

// Clock returns strictly increasing times, so that "recorded later" always sorts as more
// recent even when the system clock is coarse or steps back. The zero value is ready to use;
// it is not safe for concurrent use (callers hold their own lock).
type Clock struct {
	last time.Time
}

// Now returns time.Now without its monotonic reading, or 1ns after the previous result if that
// is not later.
func (c *Clock) Now() time.Time {
	t := time.Now().Round(0)
	if !t.After(c.last) {
		t = c.last.Add(time.Nanosecond)
	}
	c.last = t
	return t
}
