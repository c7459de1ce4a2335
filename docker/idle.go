package docker

// CloseIdleConnections closes the idle keep-alive connections of every registry client of
// this process. The clients share one connection pool per registry host (and TLS setting) for
// the life of the process, so that copies reuse connections; the pool closes a connection
// after 90 s of idleness. A program that wants none left once its copies returned (a test
// that checks for leaked goroutines, a service between two syncs) calls this; later copies
// open new connections as they need them. Connections in use are not affected.
func CloseIdleConnections() {
	endpoints.Range(func(_, v any) bool {
		v.(*endpoint).transport.CloseIdleConnections()
		return true
	})
}
