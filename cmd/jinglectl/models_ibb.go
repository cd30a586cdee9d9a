package main

import "github.com/jinglekit/jinglekit/internal/stanzamodel"

// registerIBB adds the ibb element models to inspect's registry.
func registerIBB(r *stanzamodel.Registry) {}
