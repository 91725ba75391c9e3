package server

import "github.com/goscache/goscache/scache"

// Test hooks for the scache_test package.

// SetOnFull sets the hook that Serve calls when every client slot is taken.
func SetOnFull(s *Server, f func()) { s.onFull = f }

// ConnCountForTest returns the number of connections the server tracks.
func ConnCountForTest(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// StatsForTest returns the server's lifetime statistics.
func StatsForTest(s *Server) scache.Totals { return s.stats.totals() }

// RefusedForTest returns the number of connections refused since the
// server started (refused_clients of goscache_stats).
func RefusedForTest(s *Server) int64 { return s.refused.Load() }
