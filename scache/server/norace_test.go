//go:build !race

package server

// raceEnabled is true when the race detector is on: it allocates for its
// own bookkeeping, so allocation counts are not checked then.
const raceEnabled = false
