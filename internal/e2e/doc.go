// Package e2e holds the end-to-end tests of file transfer: two clients
// logged in to a real Prosody (internal/prosodytest) send files to each
// other over every transport, fall back, resume, and interoperate with a
// third-party client (Libervia). It has no code of its own.
package e2e
