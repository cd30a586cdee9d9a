package rtp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	pionrtp "github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
	"github.com/pion/webrtc/v3/pkg/media/ivfreader"
	"github.com/pion/webrtc/v3/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v3/pkg/media/oggwriter"
)

// Limits of the file readers: larger packets or frames are refused.
const (
	MaxOpusPacket = 1 << 16
	MaxVP8Frame   = 4 << 20
)

// ErrBadMedia is wrapped by the errors of the file readers.
var ErrBadMedia = errors.New("rtp: bad media file")

// OggReader reads the Opus packets of an Ogg file (RFC 7845): it checks
// each page's CRC, reassembles packets that span pages and skips the
// OpusHead and OpusTags headers. Only the first logical stream is read.
type OggReader struct {
	r        *bufio.Reader
	serial   uint32
	started  bool
	packets  [][]byte
	partial  []byte
	headers  int
	Channels uint8
}

// NewOggReader reads the headers of an Ogg Opus stream.
func NewOggReader(r io.Reader) (*OggReader, error) {
	o := &OggReader{r: bufio.NewReader(r)}
	for o.headers < 2 {
		p, err := o.packet()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: no Opus headers", ErrBadMedia)
			}
			return nil, err
		}
		switch o.headers {
		case 0:
			if len(p) < 19 || string(p[:8]) != "OpusHead" {
				return nil, fmt.Errorf("%w: not Ogg Opus", ErrBadMedia)
			}
			o.Channels = p[9]
		case 1:
			if len(p) < 8 || string(p[:8]) != "OpusTags" {
				return nil, fmt.Errorf("%w: no OpusTags", ErrBadMedia)
			}
		}
		o.headers++
	}
	return o, nil
}

var oggCRC = func() *[256]uint32 {
	var t [256]uint32
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return &t
}()

// OggPage is the header of one Ogg page, as ReadPage returns it.
type OggPage struct {
	HeaderType uint8
	Granule    uint64
	Serial     uint32
	Sequence   uint32
	Segments   []uint8
	Body       []byte
}

// ReadOggPage reads one Ogg page and checks its CRC.
func ReadOggPage(r io.Reader) (OggPage, error) {
	var h [27]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: truncated page", ErrBadMedia)
		}
		return OggPage{}, err
	}
	if string(h[:4]) != "OggS" || h[4] != 0 {
		return OggPage{}, fmt.Errorf("%w: not an Ogg page", ErrBadMedia)
	}
	p := OggPage{HeaderType: h[5], Granule: binary.LittleEndian.Uint64(h[6:]),
		Serial: binary.LittleEndian.Uint32(h[14:]), Sequence: binary.LittleEndian.Uint32(h[18:])}
	want := binary.LittleEndian.Uint32(h[22:])
	p.Segments = make([]uint8, h[26])
	if _, err := io.ReadFull(r, p.Segments); err != nil {
		return OggPage{}, fmt.Errorf("%w: truncated page", ErrBadMedia)
	}
	n := 0
	for _, s := range p.Segments {
		n += int(s)
	}
	p.Body = make([]byte, n)
	if _, err := io.ReadFull(r, p.Body); err != nil {
		return OggPage{}, fmt.Errorf("%w: truncated page", ErrBadMedia)
	}
	var crc uint32
	upd := func(b []byte) {
		for _, x := range b {
			crc = crc<<8 ^ oggCRC[byte(crc>>24)^x]
		}
	}
	h[22], h[23], h[24], h[25] = 0, 0, 0, 0
	upd(h[:])
	upd(p.Segments)
	upd(p.Body)
	if crc != want {
		return OggPage{}, fmt.Errorf("%w: page %d: CRC mismatch", ErrBadMedia, p.Sequence)
	}
	return p, nil
}

// packet returns the next packet of the first logical stream.
func (o *OggReader) packet() ([]byte, error) {
	for len(o.packets) == 0 {
		p, err := ReadOggPage(o.r)
		if err != nil {
			return nil, err
		}
		if !o.started {
			o.serial, o.started = p.Serial, true
		} else if p.Serial != o.serial {
			continue
		}
		off := 0
		for _, s := range p.Segments {
			o.partial = append(o.partial, p.Body[off:off+int(s)]...)
			off += int(s)
			if len(o.partial) > MaxOpusPacket {
				return nil, fmt.Errorf("%w: packet larger than %d bytes", ErrBadMedia, MaxOpusPacket)
			}
			if s < 255 {
				o.packets = append(o.packets, o.partial)
				o.partial = nil
			}
		}
	}
	pk := o.packets[0]
	o.packets = o.packets[1:]
	return pk, nil
}

// ReadPacket returns the next Opus packet and its duration (from its TOC
// byte, RFC 6716 §3.1); io.EOF at the end.
func (o *OggReader) ReadPacket() ([]byte, time.Duration, error) {
	for {
		p, err := o.packet()
		if err != nil {
			return nil, 0, err
		}
		if len(p) == 0 {
			continue
		}
		return p, OpusDuration(p), nil
	}
}

// OpusDuration returns the duration of an Opus packet from its TOC byte
// (RFC 6716 §3.1); 20ms when it cannot tell.
func OpusDuration(p []byte) time.Duration {
	if len(p) == 0 {
		return 20 * time.Millisecond
	}
	toc := p[0]
	cfg := toc >> 3
	var frame time.Duration
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		frame = [4]time.Duration{10, 20, 40, 60}[cfg%4] * time.Millisecond
	case cfg < 16: // Hybrid: 10, 20 ms
		frame = [2]time.Duration{10, 20}[cfg%2] * time.Millisecond
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [4]time.Duration{2500, 5000, 10000, 20000}[cfg%4] * time.Microsecond
	}
	n := 1
	switch toc & 3 {
	case 1, 2:
		n = 2
	case 3:
		if len(p) < 2 {
			return 20 * time.Millisecond
		}
		n = int(p[1] & 0x3f)
	}
	return frame * time.Duration(n)
}

// FileSource plays a media file into a local track, paced in real time.
type FileSource struct {
	track *webrtc.TrackLocalStaticSample
	next  func() ([]byte, time.Duration, error)
	// Loop restarts the file at its end instead of stopping.
	rewind func() error
	Loop   bool
}

// Track implements MediaSource.
func (f *FileSource) Track() webrtc.TrackLocal { return f.track }

// Run implements MediaSource: it writes the file's packets or frames to
// the track at their pace until the end (or forever with Loop) or ctx is
// done.
func (f *FileSource) Run(ctx context.Context) error {
	start := time.Now()
	var at time.Duration
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		data, dur, err := f.next()
		if errors.Is(err, io.EOF) && f.Loop && f.rewind != nil {
			if err := f.rewind(); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := f.track.WriteSample(media.Sample{Data: data, Duration: dur}); err != nil {
			return err
		}
		at += dur
		timer.Reset(time.Until(start.Add(at)))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
	}
}

// NewOggSource returns a source that plays an Ogg Opus file. Pass an
// io.ReadSeeker to allow Loop.
func NewOggSource(r io.Reader) (*FileSource, error) {
	or, err := NewOggReader(r)
	if err != nil {
		return nil, err
	}
	track, err := webrtc.NewTrackLocalStaticSample(OpusCapability, "audio", "jinglekit")
	if err != nil {
		return nil, fmt.Errorf("rtp: %w", err)
	}
	f := &FileSource{track: track}
	f.next = func() ([]byte, time.Duration, error) { return or.ReadPacket() }
	if rs, ok := r.(io.ReadSeeker); ok {
		f.rewind = func() error {
			if _, err := rs.Seek(0, io.SeekStart); err != nil {
				return err
			}
			n, err := NewOggReader(rs)
			if err != nil {
				return err
			}
			or = n
			return nil
		}
	}
	return f, nil
}

// IVFReader reads the VP8 frames of an IVF file.
type IVFReader struct {
	r       *ivfreader.IVFReader
	header  *ivfreader.IVFFileHeader
	last    uint64
	started bool
}

// NewIVFReader reads the header of an IVF file and checks that it holds
// VP8.
func NewIVFReader(r io.Reader) (*IVFReader, error) {
	ir, h, err := ivfreader.NewWith(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMedia, err)
	}
	if h.FourCC != "VP80" {
		return nil, fmt.Errorf("%w: IVF codec %q, want VP80", ErrBadMedia, h.FourCC)
	}
	if h.TimebaseDenominator == 0 || h.TimebaseNumerator == 0 {
		return nil, fmt.Errorf("%w: IVF time base %d/%d", ErrBadMedia, h.TimebaseNumerator, h.TimebaseDenominator)
	}
	return &IVFReader{r: ir, header: h}, nil
}

// ReadFrame returns the next frame and its duration; io.EOF at the end.
func (v *IVFReader) ReadFrame() ([]byte, time.Duration, error) {
	frame, fh, err := v.r.ParseNextFrame()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, io.EOF
		}
		return nil, 0, fmt.Errorf("%w: %v", ErrBadMedia, err)
	}
	if len(frame) > MaxVP8Frame {
		return nil, 0, fmt.Errorf("%w: frame larger than %d bytes", ErrBadMedia, MaxVP8Frame)
	}
	ticks := uint64(1)
	if v.started && fh.Timestamp > v.last && fh.Timestamp-v.last < 1<<20 {
		ticks = fh.Timestamp - v.last
	}
	v.started, v.last = true, fh.Timestamp
	d := time.Duration(ticks) * time.Second * time.Duration(v.header.TimebaseNumerator) / time.Duration(v.header.TimebaseDenominator)
	return frame, d, nil
}

// NewIVFSource returns a source that plays an IVF (VP8) file.
func NewIVFSource(r io.Reader) (*FileSource, error) {
	vr, err := NewIVFReader(r)
	if err != nil {
		return nil, err
	}
	track, err := webrtc.NewTrackLocalStaticSample(VP8Capability, "video", "jinglekit")
	if err != nil {
		return nil, fmt.Errorf("rtp: %w", err)
	}
	f := &FileSource{track: track}
	f.next = func() ([]byte, time.Duration, error) { return vr.ReadFrame() }
	if rs, ok := r.(io.ReadSeeker); ok {
		f.rewind = func() error {
			if _, err := rs.Seek(0, io.SeekStart); err != nil {
				return err
			}
			n, err := NewIVFReader(rs)
			if err != nil {
				return err
			}
			vr = n
			return nil
		}
	}
	return f, nil
}

// TrackStats counts what a recorder wrote.
type TrackStats struct {
	Content string
	Path    string
	Packets int
	Bytes   int64
}

// RecordOgg writes an Opus track to w as Ogg until the track ends. It
// returns the number of RTP packets and payload bytes written.
func RecordOgg(track *webrtc.TrackRemote, w io.Writer) (packets int, bytes int64, err error) {
	return recordOgg(track, w, nil)
}

func recordOgg(track packetSource, w io.Writer, count *atomic.Int64) (packets int, bytes int64, err error) {
	ch := track.Codec().Channels
	if ch == 0 {
		ch = 2
	}
	ow, err := oggwriter.NewWith(w, 48000, ch)
	if err != nil {
		return 0, 0, fmt.Errorf("rtp: %w", err)
	}
	return record(track, ow, count)
}

// RecordIVF writes a VP8 track to w as IVF until the track ends.
func RecordIVF(track *webrtc.TrackRemote, w io.Writer) (packets int, bytes int64, err error) {
	return recordIVF(track, w, nil)
}

func recordIVF(track packetSource, w io.Writer, count *atomic.Int64) (packets int, bytes int64, err error) {
	iw, err := ivfwriter.NewWith(w, ivfwriter.WithCodec(webrtc.MimeTypeVP8))
	if err != nil {
		return 0, 0, fmt.Errorf("rtp: %w", err)
	}
	return record(track, iw, count)
}

type rtpPacket = pionrtp.Packet

// packetSource is what a recording reads: a remote track, or the copy of
// its packets an Echo hands on (packetQueue).
type packetSource interface {
	ReadRTP() (*rtpPacket, interceptor.Attributes, error)
	Codec() webrtc.RTPCodecParameters
}

// packetQueue hands the packets of a track read elsewhere to a recording.
type packetQueue struct {
	ch    chan *rtpPacket
	codec webrtc.RTPCodecParameters
}

// queueLen bounds the packets waiting to be recorded: a recording that
// falls this far behind loses packets rather than delay the echo.
const queueLen = 512

func newPacketQueue(codec webrtc.RTPCodecParameters) *packetQueue {
	return &packetQueue{ch: make(chan *rtpPacket, queueLen), codec: codec}
}

func (q *packetQueue) ReadRTP() (*rtpPacket, interceptor.Attributes, error) {
	p, ok := <-q.ch
	if !ok {
		return nil, nil, io.EOF
	}
	return p, nil, nil
}

func (q *packetQueue) Codec() webrtc.RTPCodecParameters { return q.codec }

// put queues a copy of p, or drops it when the recording is behind.
func (q *packetQueue) put(p *rtpPacket) {
	select {
	case q.ch <- p.Clone():
	default:
	}
}

// end tells the recording the track is over.
func (q *packetQueue) end() { close(q.ch) }

type rtpWriter interface {
	WriteRTP(*rtpPacket) error
	Close() error
}

func record(track packetSource, w rtpWriter, count *atomic.Int64) (packets int, bytes int64, err error) {
	for {
		p, _, rerr := track.ReadRTP()
		if rerr != nil {
			break
		}
		if len(p.Payload) == 0 {
			continue
		}
		if werr := w.WriteRTP(p); werr != nil {
			// A packet the writer cannot take (a VP8 fragment before the
			// first key frame, say) is skipped.
			continue
		}
		packets++
		bytes += int64(len(p.Payload))
		if count != nil {
			count.Add(1)
		}
	}
	if cerr := w.Close(); cerr != nil {
		err = fmt.Errorf("rtp: %w", cerr)
	}
	return packets, bytes, err
}

// Recorder records the remote tracks of calls into a directory: Opus as
// <sid>-<content>.ogg, VP8 as <sid>-<content>.ivf. It never overwrites a
// file: a name in use gets a numbered suffix. Use OnTrack as the call's
// Options.OnTrack, and Wait for the files to be complete.
type Recorder struct {
	Dir string

	mu      sync.Mutex
	wg      sync.WaitGroup
	stats   []TrackStats
	errs    []error
	packets atomic.Int64
}

// Packets returns the number of packets written so far, all tracks
// together.
func (r *Recorder) Packets() int { return int(r.packets.Load()) }

// NewRecorder returns a recorder writing into dir, which must exist.
func NewRecorder(dir string) *Recorder { return &Recorder{Dir: dir} }

// OnTrack records one track until it ends; it fits Options.OnTrack.
func (r *Recorder) OnTrack(c *Call, content string, track *webrtc.TrackRemote) {
	r.wg.Add(1)
	r.record(c, content, track)
}

// tee returns a queue whose packets are recorded as content's track (in a
// goroutine that Wait waits for); end the queue when the track ends.
func (r *Recorder) tee(c *Call, content string, codec webrtc.RTPCodecParameters) *packetQueue {
	q := newPacketQueue(codec)
	r.wg.Add(1)
	go r.record(c, content, q)
	return q
}

// record records track; the caller did r.wg.Add(1).
func (r *Recorder) record(c *Call, content string, track packetSource) {
	defer r.wg.Done()
	ext, rec := "", recordOgg
	switch strings.ToLower(track.Codec().MimeType) {
	case strings.ToLower(webrtc.MimeTypeOpus):
		ext = ".ogg"
	case strings.ToLower(webrtc.MimeTypeVP8):
		ext, rec = ".ivf", recordIVF
	default:
		r.fail(fmt.Errorf("rtp: cannot record %s", track.Codec().MimeType))
		drain(track)
		return
	}
	base := safeName(c.SID()) + "-" + safeName(content)
	f, path, err := createNew(r.Dir, base, ext)
	if err != nil {
		r.fail(err)
		drain(track)
		return
	}
	// The pion writers close what they write to when it is a Closer;
	// the file is closed here.
	n, b, err := rec(track, struct{ io.Writer }{f}, &r.packets)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		r.fail(err)
	}
	r.mu.Lock()
	r.stats = append(r.stats, TrackStats{Content: content, Path: path, Packets: n, Bytes: b})
	r.mu.Unlock()
}

func (r *Recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

// Wait waits until every track being recorded has ended and its file is
// closed, and returns what was written.
func (r *Recorder) Wait() ([]TrackStats, error) {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]TrackStats(nil), r.stats...), errors.Join(r.errs...)
}

func drain(track packetSource) {
	for {
		if _, _, err := track.ReadRTP(); err != nil {
			return
		}
	}
}

// safeName keeps a file name component to letters, digits, '-' and '_'.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 64 {
			break
		}
	}
	if b.Len() == 0 {
		return "call"
	}
	return b.String()
}

// createNew creates dir/base+ext, or dir/base-N+ext when that exists,
// never replacing a file nor following a link. Recordings are private
// (0600), as received files are.
func createNew(dir, base, ext string) (*os.File, string, error) {
	for i := 0; i < 1000; i++ {
		name := base + ext
		if i > 0 {
			name = fmt.Sprintf("%s-%d%s", base, i, ext)
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, path, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, "", fmt.Errorf("rtp: %w", err)
		}
	}
	return nil, "", fmt.Errorf("rtp: no free file name for %s%s in %s", base, ext, dir)
}
