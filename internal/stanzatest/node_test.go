package stanzatest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCheckNode: Debian 12's Node 18 is refused as not installed (the
// harness's peer.js needs Node 20); Node 20 passes.
func TestCheckNode(t *testing.T) {
	for v, ok := range map[string]bool{"v18.20.4": false, "v20.20.2": true, "v22.1.0": true, "garbage": false} {
		dir := t.TempDir()
		script := "#!/bin/sh\necho " + v + "\n"
		if err := os.WriteFile(filepath.Join(dir, "node"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", dir)
		err := checkNode(context.Background())
		if ok && err != nil {
			t.Errorf("node %s: %v", v, err)
		}
		if !ok && !errors.Is(err, ErrNotInstalled) {
			t.Errorf("node %s: %v, want ErrNotInstalled", v, err)
		}
	}
}
