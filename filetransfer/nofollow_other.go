//go:build !unix

package filetransfer

import "os"

// oNoFollow is not available here; O_EXCL still refuses existing links.
const oNoFollow = 0

// fileID is not available here: a .part is recognised by its sidecar only.
func fileID(os.FileInfo) (dev, ino uint64, ok bool) { return 0, 0, false }

// ownedByUs cannot be checked here.
func ownedByUs(os.FileInfo) bool { return true }
