//go:build race

package sqlite

// raceDetector is whether the tests run under -race, which makes SQLite
// about thirty times slower.
const raceDetector = true
