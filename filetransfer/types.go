package filetransfer

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"time"

	"mellium.im/xmpp/jid"
)

// Source is a file to send: its metadata and how to read it. Open is called
// once per transfer and must yield at least Size bytes; only the first Size
// bytes are sent and hashed.
type Source struct {
	Name      string
	Size      int64
	MediaType string
	Desc      string
	// Date is the last modification time; zero leaves <date/> out.
	Date time.Time
	// Hashes, when known in advance, are put in the offer as <hash/>
	// values; otherwise the offer carries <hash-used/> and the hashes,
	// computed while sending, follow in a <checksum/>.
	Hashes []Digest
	Open   func() (io.ReadCloser, error)
}

// FileSource describes the regular file at path for sending.
func FileSource(path string) (Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Source{}, fmt.Errorf("filetransfer: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Source{}, fmt.Errorf("filetransfer: %s is not a regular file", path)
	}
	mt := mime.TypeByExtension(filepath.Ext(path))
	if mt == "" {
		mt = "application/octet-stream"
	}
	return Source{
		Name:      filepath.Base(path),
		Size:      fi.Size(),
		MediaType: mt,
		Date:      fi.ModTime(),
		Open:      func() (io.ReadCloser, error) { return os.Open(path) },
	}, nil
}

// BytesSource describes an in-memory file.
func BytesSource(name string, data []byte) Source {
	return Source{
		Name:      name,
		Size:      int64(len(data)),
		MediaType: "application/octet-stream",
		Open:      func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

// Offer is what a Handler's policy is asked about: a file a peer offers.
// Everything in it comes from the peer and is untrusted, except LocalName.
type Offer struct {
	// From is the peer's full JID.
	From    jid.JID
	SID     string
	Content string
	// Name is the name as offered; LocalName is what it becomes on disk
	// (before a free "name (n)" is picked when it exists).
	Name      string
	LocalName string
	// Size is the offered size, -1 when the offer has none.
	Size      int64
	MediaType string
	Desc      string
	Date      time.Time
	// Hashes are the hash values of the offer; HashAlgos the algorithms
	// announced (values and <hash-used/> together).
	Hashes    []Digest
	HashAlgos []string
	// Namespace is the description's namespace (NS, NS4 or NS3).
	Namespace string
	// Encrypted is true when the content has a security layer that this
	// side could open: the data will be encrypted end to end.
	Encrypted bool
}

// Decision is a policy's answer to an Offer.
type Decision struct {
	Accept bool
	// Name, when set, replaces the offered name (it is sanitized too).
	Name string
	// Overwrite lets the file replace an existing one of the same name;
	// otherwise a free "name (n).ext" is used.
	Overwrite bool
}

// AcceptAll is a policy that accepts every offer (within the Limits).
func AcceptAll(Offer) Decision { return Decision{Accept: true} }

// AcceptFrom returns a policy that accepts offers from the given bare
// JIDs only.
func AcceptFrom(peers ...jid.JID) func(Offer) Decision {
	allowed := make(map[string]bool, len(peers))
	for _, p := range peers {
		allowed[p.Bare().String()] = true
	}
	return func(o Offer) Decision { return Decision{Accept: allowed[o.From.Bare().String()]} }
}

// Request asks a peer for a file it hosts (a File Request, the "pull" of
// XEP-0234 §6.2). The requester sets Name and/or Hashes; the serving
// Handler's Serve sees From, SID, Content, Offset and Length too.
type Request struct {
	Name   string
	Hashes []Digest
	// Transports are transport namespaces in order of preference (empty:
	// every registered method).
	Transports []string

	// Set on the serving side.
	From    jid.JID
	SID     string
	Content string
	Offset  int64
	Length  int64 // -1: to the end
}

// Progress reports how a file transfer advances.
type Progress struct {
	Peer    jid.JID
	SID     string
	Content string
	Name    string
	// Sending is true on the File Sender's side.
	Sending bool
	// Bytes is how much of the file is sent or on disk, a resumed part
	// included; Total the file's size (-1 unknown).
	Bytes int64
	Total int64
	// Transferred is what this session carried, and Rate its average in
	// bytes per second.
	Transferred int64
	Rate        float64
	// Cancel aborts this file (content-remove, or session-terminate when it
	// is the session's last content). It does not block.
	Cancel func()
}

// Result is the outcome of one file.
type Result struct {
	Peer    jid.JID
	SID     string
	Content string
	// Name is the name as offered.
	Name string
	// Path is where the received file is: its final name once verified,
	// or the .part kept for a resume after a failure ("" otherwise).
	Path string
	Size int64
	// Offset is where this session started in the file (a resume), Bytes
	// how many bytes it carried.
	Offset int64
	Bytes  int64
	// Hash is the strongest verified digest and Hashes all of them. On the
	// sending side they are the digests computed while sending.
	Hash   Digest
	Hashes []Digest
	// Encrypted is true when the content had a security layer (XEP-0391
	// JET, say): the data was encrypted end to end.
	Encrypted bool
	// Note tells the user something about this file that is not an error:
	// NoteEncryptedRestart when a resume was not done because the
	// transfer was encrypted. "" otherwise.
	Note string
	// Verified is true on the receiving side when the data matched the
	// sender's hash, and on the sending side when the receiver confirmed
	// it (<received/> or a successful session-terminate after the data).
	Verified bool
	// Transport is the namespace of the transport that carried the data.
	Transport string
	Duration  time.Duration
	// Err is nil on success, else a *TransferError.
	Err error
}

// Timeouts bound the waits of a transfer. Zero values mean the defaults.
type Timeouts struct {
	// Checksum bounds the receiver's wait, once all data arrived, for the
	// sender's <checksum/> (default 60s).
	Checksum time.Duration
	// Verdict bounds the sender's wait, once all data was sent, for the
	// receiver's <received/> or session-terminate (default 60s).
	Verdict time.Duration
	// Idle fails a transfer whose connection carries no data for this long
	// (default 2m).
	Idle time.Duration
	// Grace is how long a side whose connection broke waits for the peer's
	// explanation (content-remove or session-terminate) before reporting a
	// transport failure (default 2s).
	Grace time.Duration
	// Connect bounds the time a file's transport takes to come up once the
	// session is accepted — an IBB <open/> that never comes, SOCKS5
	// candidates that all fail and a peer that goes silent, fallbacks
	// included (default 60s). The file then fails with ErrTimeout.
	Connect time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.Checksum, 60*time.Second)
	def(&t.Verdict, 60*time.Second)
	def(&t.Idle, 2*time.Minute)
	def(&t.Grace, 2*time.Second)
	def(&t.Connect, DefaultConnectTimeout)
	return t
}

// DefaultConnectTimeout is the default of Timeouts.Connect.
const DefaultConnectTimeout = 60 * time.Second

// Limits bound what a Handler accepts. Zero values mean the defaults.
type Limits struct {
	// MaxFileSize is the largest file accepted (default 8 GiB). Larger
	// offers are declined with <file-too-large/>, and a sender that sends
	// more than it offered is stopped.
	MaxFileSize int64
	// MaxFiles is the number of files in one session (default 16); offers
	// beyond it are declined.
	MaxFiles int
	// MaxNameBytes bounds a local file name (default 255, the usual
	// file-system limit).
	MaxNameBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = 8 << 30
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 16
	}
	if l.MaxNameBytes <= 0 || l.MaxNameBytes > 255 {
		l.MaxNameBytes = 255
	}
	return l
}

// defaultHashes are the algorithms a sender uses when none are configured:
// sha-256 first (what every peer checks), sha-1 alongside for older peers.
func defaultHashes() []string { return []string{SHA256, SHA1} }
