package cache

import "testing"

func TestDescriptorBudget(t *testing.T) {
	tests := []struct {
		nofile            uint64
		clients, sessions int
	}{
		{1024, 64, 864},
		{20000, 1024, 17920},
		{256, 16, 192},
		{64, 16, 1}, // too few to share: one session, so saves still work
		{1 << 20, 1024, 1<<20 - 2048 - 32},
		{1 << 62, 1024, 1<<31 - 1 - 2048 - 32}, // RLIM_INFINITY and the like
	}
	for _, tt := range tests {
		c, s := DescriptorBudget(tt.nofile)
		if c != tt.clients || s != tt.sessions {
			t.Errorf("DescriptorBudget(%d) = %d, %d; want %d, %d", tt.nofile, c, s, tt.clients, tt.sessions)
		}
	}
}
