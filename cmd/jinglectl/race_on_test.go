//go:build race

package main

// raceEnabled says the tests run with the race detector. The binary of the
// end-to-end tests is then built with it too when JINGLEKIT_E2E_RACE=1
// (it doubles their time; the agent's concurrency is also covered in
// process by cmd/jinglectl/internal/agent's tests).
const raceEnabled = true
