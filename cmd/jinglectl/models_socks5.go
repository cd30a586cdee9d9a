package main

import "github.com/jinglekit/jinglekit/internal/stanzamodel"

// registerSOCKS5 adds the socks5 element models to inspect's registry.
func registerSOCKS5(r *stanzamodel.Registry) {}
