package main

import "github.com/jinglekit/jinglekit/internal/stanzamodel"

// registerFileTransfer adds the filetransfer element models to inspect's registry.
func registerFileTransfer(r *stanzamodel.Registry) {}
