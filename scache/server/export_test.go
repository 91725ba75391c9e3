package server

// Test hooks for the scache_test package.

// SetOnFull sets the hook that Serve calls when every client slot is taken.
func SetOnFull(s *Server, f func()) { s.onFull = f }

// ConnCountForTest returns the number of connections the server tracks.
func ConnCountForTest(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
