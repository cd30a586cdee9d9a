package agent

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/jinglekit/jinglekit/filetransfer"
)

// fileDigest computes the sha-256 of a file.
func fileDigest(path string) (filetransfer.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return filetransfer.Digest{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return filetransfer.Digest{}, err
	}
	return filetransfer.Digest{Algo: filetransfer.SHA256, Sum: h.Sum(nil)}, nil
}

// sameAsExisting reports whether dir already holds, under the offer's
// local name, a regular file of the offered size whose digest is one the
// offer carries: the sender is offering again a file that arrived (an
// agent retrying after a lost connection does, with the hash in the
// offer). The file is then received again over it, rather than next to
// it as "NAME (1)": the content is the same, and it is verified again
// before it replaces the old copy.
func sameAsExisting(dir string, o filetransfer.Offer) bool {
	if dir == "" || o.Size < 0 || len(o.Hashes) == 0 || o.LocalName == "" {
		return false
	}
	path := filepath.Join(dir, o.LocalName)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != o.Size {
		return false
	}
	for _, d := range o.Hashes {
		var h hash.Hash
		switch d.Algo {
		case filetransfer.SHA256:
			h = sha256.New()
		case filetransfer.SHA512:
			h = sha512.New()
		default:
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		_, err = io.Copy(h, io.LimitReader(f, o.Size+1))
		f.Close()
		return err == nil && bytes.Equal(h.Sum(nil), d.Sum)
	}
	return false
}
