package filetransfer

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
)

// Handler receives files: it is the jingle.Application for the
// file-transfer namespaces. Register it on a jingle.Manager (also on one
// that only sends: the Manager routes the peer's session-info, such as
// <received/>, through it).
//
// Each offered file is shown to Policy; an accepted file is written to
// Dir as NAME.part (created exclusively with the first byte, never through
// a symbolic link) and renamed to its final name only once its hash is verified; a file of
// the same name is never replaced unless the Decision says so. When a
// transfer breaks, the .part (with its record in StateDirName) is kept and
// a later offer of the same file by the same peer resumes it with a
// <range/>.
//
// Set the fields before registering the Handler; do not change them
// afterwards.
type Handler struct {
	// Dir is the directory files are received into. It must exist.
	Dir string
	// Policy decides on each offer; nil declines every offer.
	Policy func(Offer) Decision
	// Serve answers File Requests (a peer asking this side for a file);
	// nil refuses them with <file-not-available/>.
	Serve func(ctx context.Context, r Request) (Source, error)
	// Done is called with the outcome of every file offered to this side
	// (declined ones included) and of every Fetch, on the goroutine that
	// drives the session: return promptly.
	Done func(Result)
	// Progress is called as received and served files advance, from the
	// goroutine moving the data: it must not block.
	Progress func(Progress)
	Limits   Limits
	Timeouts Timeouts
	// Hashes are the algorithms used when serving a File Request (default
	// sha-256 and sha-1).
	Hashes []string
	// FileMode is the permission of created files (default 0600).
	FileMode os.FileMode
	// DiscardPartial removes the .part of a failed transfer instead of
	// keeping it for a resume.
	DiscardPartial bool
	// NoResume makes every offer start from the first byte.
	NoResume bool
	// Logger receives the Handler's logs; nil means slog.Default().
	Logger *slog.Logger

	once sync.Once
	st   *store
	// bufs pools the receiving workers' chunkSize buffers (recvBuf).
	bufs sync.Pool
	// smallBufs pools the trickleChunk buffers of parked receiving
	// workers (recvBuf.drop).
	smallBufs sync.Pool
	// pipeBufs pools the pipeBlock buffers of the receiving workers'
	// hash pipes.
	pipeBufs sync.Pool
}

func (h *Handler) store() *store {
	h.once.Do(func() { h.st = newStore(h.Dir, h.FileMode) })
	return h.st
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// Namespaces implements jingle.Application: NS, then NS4 and NS3.
func (h *Handler) Namespaces() []string { return Namespaces() }

// Features implements jingle.FeatureAdvertiser: the hash algorithms of
// XEP-0300 (HashFeatures).
func (h *Handler) Features() []string { return HashFeatures() }

// UnderstandsInfo implements jingle.InfoUnderstander: <checksum/> and
// <received/> in any of the namespaces.
func (h *Handler) UnderstandsInfo(n xml.Name) bool {
	return knownNS(n.Space) && (n.Local == "checksum" || n.Local == "received")
}

// HandleSession implements jingle.Application: it decides on every content
// of an incoming session (offers through Policy, requests through Serve),
// accepts the session if any is taken, and runs the transfers until the
// session ends. The receiving side ends the session when all is done.
func (h *Handler) HandleSession(ctx context.Context, s *jingle.Session) {
	// The answer is built in its own call, so that its frame is off the
	// stack while the session runs: an idle session's goroutine then keeps
	// a small stack.
	if e := h.answer(ctx, s); e != nil {
		e.run()
	}
}

// answer decides on every content of an incoming session and answers it.
// It returns the engine to run, nil when nothing was accepted.
func (h *Handler) answer(ctx context.Context, s *jingle.Session) *engine {
	if _, err := s.NextEvent(ctx); err != nil { // session-initiate
		return nil
	}
	e := newEngine(context.WithoutCancel(ctx), s, h, h.logger(), h.Timeouts, h.Progress)
	var refused []refusal
	descs := map[string]jingle.Element{}
	receiving := 0
	for _, c := range s.Contents() {
		x, answer, terr := h.consider(e, c, receiving)
		if x != nil {
			e.add(x)
		}
		if terr != nil {
			refused = append(refused, refusal{c.Name, x, terr})
			continue
		}
		if !x.send {
			receiving++
		}
		el, err := jingle.NewElement(answer)
		if err != nil {
			refused = append(refused, refusal{c.Name, x, newErr(ErrProtocol, c.Name, nil, err)})
			continue
		}
		descs[c.Name] = el
	}
	if len(descs) == 0 {
		r := jingle.Reason{Condition: jingle.ReasonDecline}
		if len(refused) > 0 {
			r = reasonFor(refused[0].err)
		}
		tctx, cancel := e.ctxSend()
		_ = s.Terminate(tctx, r)
		cancel()
		for _, rf := range refused {
			if rf.x != nil {
				e.finish(rf.x, rf.err)
			}
		}
		e.stop()
		return nil
	}
	actx, cancel := e.ctxSend()
	err := s.Accept(actx, descs)
	cancel()
	if err != nil {
		for _, x := range e.files {
			e.finish(x, newErr(ErrCanceled, x.key.Name, nil, err))
		}
		e.stop()
		return nil
	}
	for _, rf := range refused {
		if rf.x != nil {
			e.finish(rf.x, rf.err)
		}
		r := reasonFor(rf.err)
		rctx, cancel := e.ctxSend()
		_ = s.RemoveContent(rctx, rf.content, &r)
		cancel()
	}
	for _, x := range e.files {
		if x.state == xWaiting {
			e.start(x)
		}
	}
	return e
}

type refusal struct {
	content string
	x       *xfer // nil when nothing is worth reporting
	err     *TransferError
}

// isOffer says whether the content's file is sent by its creator.
func isOffer(c jingle.Content, legacy string) bool {
	switch c.Senders {
	case jingle.SendersInitiator:
		return c.Key().Creator == jingle.CreatorInitiator
	case jingle.SendersResponder:
		return c.Key().Creator == jingle.CreatorResponder
	}
	return legacy != "request"
}

// consider decides on a content the peer proposed (in session-initiate or
// content-add) and returns the file, the description to answer with, or
// the refusal. nRecv is the number of files this side already receives in
// the session.
func (h *Handler) consider(e *engine, c jingle.Content, nRecv int) (*xfer, Description, *TransferError) {
	var d Description
	if c.Description == nil || !knownNS(c.Description.Namespace()) {
		return nil, d, errorf(ErrProtocol, c.Name, "not a file-transfer description")
	}
	if err := c.Description.Decode(&d); err != nil {
		return nil, d, errorf(ErrProtocol, c.Name, "description: %v", err)
	}
	if d.File == nil {
		return nil, d, errorf(ErrProtocol, c.Name, "description without <file/>")
	}
	offer := isOffer(c, d.Legacy)
	weSend := offer == (c.Key().Creator == e.s.Role())
	var x *xfer
	var answer Description
	var terr *TransferError
	if weSend {
		x, answer, terr = h.considerRequest(e, c, d)
	} else {
		x, answer, terr = h.considerOffer(e, c, d, nRecv)
	}
	if x != nil && c.Security != nil {
		x.encrypted = true
	}
	return x, answer, terr
}

// securityTimeout bounds the opening of a content's security layer (which
// may fetch keys from the peer's server).
const securityTimeout = 30 * time.Second

// openSecurity opens the security layer of a content that has one (its key
// is decrypted now, before the content is accepted).
func (h *Handler) openSecurity(e *engine, c jingle.Content) *TransferError {
	if c.Security == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, securityTimeout)
	defer cancel()
	if _, err := e.s.Security(ctx, c.Name); err != nil {
		h.logger().Warn("filetransfer: cannot secure an encrypted content", "from", e.s.Peer().String(), "content", c.Name, "err", err)
		return newErr(ErrSecurity, c.Name, nil, err)
	}
	return nil
}

// readHashes splits a <file/>'s hashes into values and algorithms.
func readHashes(f *File) (values []Digest, algos []string, unsupported bool, enc HashEncoding) {
	seen := map[string]bool{}
	addAlgo := func(a string) {
		c := CanonicalAlgo(a)
		if c == "" {
			unsupported = true
			return
		}
		if !seen[c] {
			seen[c] = true
			algos = append(algos, c)
		}
	}
	for _, hu := range f.HashUsed {
		addAlgo(hu.Algo)
	}
	for _, hh := range f.Hashes {
		addAlgo(hh.Algo)
		if hh.Value == "" {
			continue
		}
		if dg, en, err := hh.Digest(); err == nil {
			values = append(values, dg)
			enc = en
		}
	}
	return values, algos, unsupported, enc
}

// considerOffer applies the limits and the policy to a file the peer
// offers, and opens its .part.
func (h *Handler) considerOffer(e *engine, c jingle.Content, d Description, nRecv int) (*xfer, Description, *TransferError) {
	lim := h.Limits.withDefaults()
	f := d.File
	if h.Dir == "" {
		return nil, d, errorf(ErrIO, c.Name, "the Handler has no directory to receive into")
	}
	size := int64(-1)
	n, sized := f.SizeValue()
	if sized {
		size = n
	}
	values, algos, unsupported, _ := readHashes(f)
	x := &xfer{
		key: c.Key(), ns: d.Namespace(),
		name: f.Name, size: size, state: xWaiting, expect: values,
	}
	x.res.Size = size
	switch {
	case sized && n < 0:
		return x, d, errorf(ErrProtocol, c.Name, "negative size")
	case size > lim.MaxFileSize:
		return x, d, limitf(ErrTooLarge, c.Name, "%d bytes offered, the receiver's maximum file size is %d", size, lim.MaxFileSize)
	case nRecv >= lim.MaxFiles:
		return x, d, limitf(ErrDeclined, c.Name, "more than %d files in one session, the receiver's limit of files per session", lim.MaxFiles)
	case len(algos) == 0 && unsupported:
		return x, d, errorf(ErrProtocol, c.Name, "no supported hash algorithm offered")
	}
	if r := f.Range; r != nil && (r.OffsetValue() < 0 || (size >= 0 && r.OffsetValue() > size)) {
		return x, d, errorf(ErrProtocol, c.Name, "range outside the file")
	}
	x.algos = receiveAlgos(algos)
	if terr := h.openSecurity(e, c); terr != nil {
		return x, d, terr
	}
	nameMax := min(lim.MaxNameBytes, 255-nameReserve)
	o := Offer{
		From: e.s.Peer(), SID: e.s.SID(), Content: c.Name,
		Name: f.Name, LocalName: SanitizeName(f.Name, nameMax),
		Size: size, MediaType: f.MediaType, Desc: f.Description(), Date: f.Time(),
		Hashes: values, HashAlgos: algos, Namespace: d.Namespace(), Encrypted: c.Security != nil,
	}
	var dec Decision
	if h.Policy != nil {
		dec = h.Policy(o)
	}
	if !dec.Accept {
		return x, d, errorf(ErrDeclined, c.Name, "declined by policy")
	}
	base := o.LocalName
	if dec.Name != "" {
		base = SanitizeName(dec.Name, nameMax)
	}
	meta := partMeta{Peer: e.s.Peer().Bare().String(), Name: f.Name, Size: size, Date: f.Date, Hashes: values, Encrypted: c.Security != nil}
	// An encrypted transfer is never resumed: the bytes of a .part were
	// not authenticated (AES-GCM checks only at the end of the stream), so
	// they are not trusted. The store restarts a .part of the same file
	// from the first byte instead (store.open), and the range is answered
	// with offset 0: the sender starts over.
	resume := !h.NoResume && f.Range != nil && size >= 0
	part, err := h.store().open(base, meta, resume, dec.Overwrite)
	if err != nil {
		h.logger().Warn("filetransfer: cannot store an offered file", "from", e.s.Peer().String(), "err", err)
		return x, d, newErr(ErrIO, c.Name, nil, err)
	}
	x.part, x.overwrite = part, dec.Overwrite
	x.offset = part.offset
	if part.restarted > 0 || (c.Security != nil && f.Range.OffsetValue() > 0) {
		x.note = NoteEncryptedRestart
		h.logger().Info("filetransfer: not resuming: "+NoteEncryptedRestart, "from", e.s.Peer().String(), "content", c.Name,
			"name", part.name, "part_bytes_dropped", part.restarted, "offset_asked", f.Range.OffsetValue())
	}
	if want := f.Range.OffsetValue(); want > 0 && want <= part.offset && c.Security == nil {
		// The sender restarts earlier than what is on disk: drop the rest.
		if err := part.truncate(want); err != nil {
			part.abort(true)
			x.part = nil
			return x, d, newErr(ErrIO, c.Name, nil, err)
		}
		x.offset = want
	}
	x.length = -1
	if size >= 0 {
		x.length = size - x.offset
	}
	// Answer with the offer, and the range this side wants.
	answer := d
	af := *f
	if f.Range != nil || x.offset > 0 {
		r := &Range{}
		if x.offset > 0 {
			r.Offset = int64Ptr(x.offset)
		}
		af.Range = r
	}
	answer.File = &af
	return x, answer, nil
}

// maxReceiveAlgos bounds the hashes a receiver computes, whatever the
// offer announces.
const maxReceiveAlgos = 3

// receiveAlgos returns the algorithms a receiver computes for an offer
// announcing algos: the strongest few of them, and sha-256 in any case
// (sha-1 too when nothing was announced).
func receiveAlgos(algos []string) []string {
	out := slices.Clone(algos)
	slices.SortStableFunc(out, func(a, b string) int { return strength(b) - strength(a) })
	out = slices.Compact(out)
	if len(out) > maxReceiveAlgos {
		out = out[:maxReceiveAlgos]
	}
	if len(algos) == 0 {
		return []string{SHA256, SHA1}
	}
	return append(out, SHA256)
}

// considerRequest asks Serve for a file the peer requests.
func (h *Handler) considerRequest(e *engine, c jingle.Content, d Description) (*xfer, Description, *TransferError) {
	f := d.File
	values, _, _, enc := readHashes(f)
	req := Request{
		Name: f.Name, Hashes: values,
		From: e.s.Peer(), SID: e.s.SID(), Content: c.Name,
		Offset: f.Range.OffsetValue(), Length: -1,
	}
	if l, ok := f.Range.LengthValue(); ok {
		req.Length = l
	}
	if h.Serve == nil {
		return nil, d, errorf(ErrNotAvailable, c.Name, "no file is served")
	}
	if terr := h.openSecurity(e, c); terr != nil {
		return nil, d, terr
	}
	src, err := h.Serve(e.ctx, req)
	if err != nil {
		return nil, d, newErr(ErrNotAvailable, c.Name, nil, err)
	}
	x, answer, terr := newSendXfer(c.Key(), d.Namespace(), d.Legacy, src, h.Hashes, enc)
	if terr != nil {
		return nil, d, terr
	}
	if f.Range != nil {
		if terr := x.applyRange(f.Range); terr != nil {
			return nil, d, terr
		}
		r := &Range{}
		if x.offset > 0 {
			r.Offset = int64Ptr(x.offset)
		}
		if l, ok := f.Range.LengthValue(); ok {
			r.Length = int64Ptr(l)
		}
		answer.File.Range = r
	}
	return x, answer, nil
}

// newSendXfer prepares a file this side sends, with its description.
func newSendXfer(key jingle.ContentKey, ns, legacy string, src Source, algos []string, enc HashEncoding) (*xfer, Description, *TransferError) {
	if src.Open == nil || src.Size < 0 {
		return nil, Description{}, errorf(ErrProtocol, key.Name, "source %q without Open or size", src.Name)
	}
	if len(algos) == 0 {
		algos = defaultHashes()
	}
	for _, a := range algos {
		if CanonicalAlgo(a) == "" {
			return nil, Description{}, errorf(ErrProtocol, key.Name, "unsupported hash algorithm %q", a)
		}
	}
	f := File{
		Name:      src.Name,
		Size:      int64Ptr(src.Size),
		MediaType: src.MediaType,
		// Libervia refuses offers without <desc/>, even empty.
		Desc:  []Text{{Value: src.Desc}},
		Range: &Range{},
	}
	if !src.Date.IsZero() {
		f.Date = src.Date.UTC().Format("2006-01-02T15:04:05Z")
	}
	x := &xfer{
		key: key, send: true, ns: ns, name: src.Name, size: src.Size,
		length: src.Size, state: xWaiting, src: src, enc: enc,
	}
	if len(src.Hashes) > 0 {
		x.preHashed = true
		for _, dg := range src.Hashes {
			f.Hashes = append(f.Hashes, dg.Element(enc))
			x.algos = append(x.algos, dg.Algo)
		}
	} else {
		for _, a := range algos {
			c := CanonicalAlgo(a)
			x.algos = append(x.algos, c)
			if ns == NS {
				f.HashUsed = append(f.HashUsed, HashUsed{Algo: c})
			} else {
				// :3 and :4 announce the algorithm with an empty <hash/>.
				f.Hashes = append(f.Hashes, Hash{XMLName: xml.Name{Space: NSHashes1, Local: "hash"}, Algo: c})
			}
		}
	}
	return x, Description{XMLName: xml.Name{Space: ns, Local: "description"}, File: &f, Legacy: legacyAnswer(legacy)}, nil
}

// legacyAnswer is the NS3 wrapper of the answer to a request: an offer.
func legacyAnswer(legacy string) string {
	if legacy == "request" {
		return "offer"
	}
	return legacy
}

// Fetch asks peer for a file it hosts (a File Request, XEP-0234 §6.2) and
// receives it into h.Dir like an accepted offer, except that no Policy is
// asked: this side asked for it. A .part left by an earlier Fetch of the
// same name from the same peer is resumed with a <range/>. The returned
// error is the Result's Err.
func (h *Handler) Fetch(ctx context.Context, m *jingle.Manager, peer jid.JID, req Request) (Result, error) {
	if req.Name == "" && len(req.Hashes) == 0 {
		return Result{}, errors.New("filetransfer: a request needs a name or a hash")
	}
	if h.Dir == "" {
		return Result{}, errors.New("filetransfer: the Handler has no directory to receive into")
	}
	lim := h.Limits.withDefaults()
	nameMax := min(lim.MaxNameBytes, 255-nameReserve)
	f := File{Name: req.Name}
	for _, dg := range req.Hashes {
		f.Hashes = append(f.Hashes, dg.Element(Base64))
	}
	base := SanitizeName(req.Name, nameMax)
	if req.Name == "" {
		base = SanitizeName(strongest(req.Hashes).String(), nameMax)
	}
	meta := partMeta{Peer: peer.Bare().String(), Name: req.Name, Size: -1, Hashes: req.Hashes}
	part, err := h.store().openRequested(base, meta, !h.NoResume)
	if err != nil {
		return Result{}, err
	}
	if part.offset > 0 {
		f.Range = &Range{Offset: int64Ptr(part.offset)}
	} else {
		f.Range = &Range{}
	}
	desc := Description{XMLName: xml.Name{Space: NS, Local: "description"}, File: &f}
	el, err := jingle.NewElement(desc)
	if err != nil {
		part.abort(part.offset > 0)
		return Result{}, err
	}
	s, err := m.Initiate(ctx, peer, jingle.Offer{
		Name: "request", Senders: jingle.SendersResponder, Description: el, Transports: req.Transports,
	})
	if err != nil {
		part.abort(part.offset > 0)
		return Result{}, newErr(kindOfInitiateError(err), "request", nil, err)
	}
	e := newEngine(ctx, s, h, h.logger(), h.Timeouts, h.Progress)
	x := &xfer{
		key: jingle.ContentKey{Creator: jingle.CreatorInitiator, Name: "request"},
		ns:  NS, name: req.Name, size: -1, state: xWaiting,
		part: part, offset: part.offset, expect: req.Hashes, partMeta: meta,
	}
	e.add(x)
	e.run()
	return x.res, x.res.Err
}

// acceptedRecv applies the peer's answer to a File Request this side made:
// the description of the file it will send.
func (e *engine) acceptedRecv(x *xfer, f *File) *TransferError {
	if f == nil {
		return errorf(ErrProtocol, x.key.Name, "accepted without <file/>")
	}
	size := int64(-1)
	if n, ok := f.SizeValue(); ok {
		if n < 0 {
			return errorf(ErrProtocol, x.key.Name, "negative size")
		}
		size = n
	}
	if e.h != nil && size > e.h.Limits.withDefaults().MaxFileSize {
		return errorf(ErrTooLarge, x.key.Name, "%d bytes", size)
	}
	values, algos, unsupported, _ := readHashes(f)
	if len(algos) == 0 && unsupported {
		return errorf(ErrProtocol, x.key.Name, "no supported hash algorithm")
	}
	x.size, x.res.Size = size, size
	if x.name == "" {
		x.name, x.res.Name = f.Name, f.Name
	}
	x.expect = append(x.expect, values...)
	for _, dg := range x.expect {
		algos = append(algos, dg.Algo)
	}
	x.algos = receiveAlgos(algos)
	off := f.Range.OffsetValue()
	if off > x.part.offset || off < 0 || (size >= 0 && off > size) {
		return errorf(ErrProtocol, x.key.Name, "the sender starts at %d, this side has %d bytes", off, x.part.offset)
	}
	if x.part.offset > 0 && (size < 0 || x.part.size != size) {
		// The partial file is of another version: start over next time.
		x.part.abort(false)
		return errorf(ErrProtocol, x.key.Name, "the file changed since the partial transfer")
	}
	if off < x.part.offset {
		if err := x.part.truncate(off); err != nil {
			return newErr(ErrIO, x.key.Name, nil, err)
		}
	}
	x.offset, x.res.Offset = off, off
	x.length = -1
	if size >= 0 {
		x.length = size - off
		if err := x.part.setSize(x.partMeta, size); err != nil {
			return newErr(ErrIO, x.key.Name, nil, err)
		}
	}
	return nil
}
