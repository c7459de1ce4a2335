package types

// StreamRetryError is returned by a destination whose PutBlob failed in a way its retry policy
// would retry (the connection broke off or stalled, the registry answered 5xx or 429) after it
// had read from the stream, which it cannot rewind. The copy engine then opens the blob again
// and calls PutBlob with a new stream (continuing what either end kept of the broken transfer)
// and with PutBlobOptions.Attempt counting the attempts so far, so that the destination's retry
// policy bounds them all. Err is the failure, and decides the error's class.
type StreamRetryError struct {
	Err error
}

// Error implements error.
func (e *StreamRetryError) Error() string { return e.Err.Error() }

// Unwrap returns the failure.
func (e *StreamRetryError) Unwrap() error { return e.Err }
