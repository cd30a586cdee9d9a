//go:build tools

// Package deps pins the modules jinglekit is built on before every one of
// them is imported by real code, so that `go mod tidy` keeps the versions the
// project has chosen. It is never compiled into a binary.
package deps

import (
	_ "github.com/armon/go-socks5"
	_ "github.com/pion/ice/v2"
	_ "github.com/pion/webrtc/v3"
	_ "go.uber.org/goleak"
	_ "mellium.im/xmpp"
)
