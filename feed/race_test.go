//go:build race

package feed_test

// raceDetector is whether the tests run under -race, which makes SQLite
// about thirty times slower.
const raceDetector = true
