package prosodytest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

const (
	nsStreams = "http://etherx.jabber.org/streams"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"

	// bindFailure is what Prosody 0.12's portmanager logs when a listening
	// port cannot be opened; prosody keeps running without that port.
	bindFailure = "Failed to open server port"

	probeInterval = 50 * time.Millisecond
)

// streamFeatures is the part of <stream:features/> the harness looks at.
type streamFeatures struct {
	XMLName  xml.Name  `xml:"http://etherx.jabber.org/streams features"`
	StartTLS *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
	// Mechanisms are the SASL mechanisms offered.
	Mechanisms []string `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms>mechanism"`
}

// waitReady waits until prosody (run p) serves XMPP on C2SAddr and accepts
// TCP on ProxyAddr. It returns an error wrapping errPortInUse when prosody
// logged that it could not bind a port.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ticker := time.NewTicker(probeInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("prosodytest: prosody exited during start-up: %v", err)
		}
		if line := s.findInLog(p.logOffset, bindFailure); line != "" {
			return fmt.Errorf("%w: %s", errPortInUse, line)
		}
		lastErr = s.probe(ctx)
		if lastErr == nil {
			// The c2s port may belong to someone else if prosody failed
			// to bind it: check again now that the probe is done.
			if line := s.findInLog(p.logOffset, bindFailure); line != "" {
				return fmt.Errorf("%w: %s", errPortInUse, line)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prosodytest: prosody not ready: %w (last probe: %v)", ctx.Err(), lastErr)
		case <-p.Done():
		case <-ticker.C:
		}
	}
}

// probe checks both listening ports once.
func (s *Server) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.C2SAddr)
	if err != nil {
		return fmt.Errorf("c2s: %w", err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, _, err := openStream(conn, s.Domain); err != nil {
		return fmt.Errorf("c2s: %w", err)
	}
	proxy, err := d.DialContext(ctx, "tcp", s.ProxyAddr)
	if err != nil {
		return fmt.Errorf("proxy65: %w", err)
	}
	return proxy.Close()
}

// openStream sends a client stream header for domain on conn and returns
// the stream features the server answers with, and the decoder of the
// server's stream, positioned after them.
func openStream(conn net.Conn, domain string) (*xml.Decoder, *streamFeatures, error) {
	header := fmt.Sprintf("<?xml version='1.0'?><stream:stream to=%s version='1.0' xmlns='jabber:client' xmlns:stream='%s'>",
		xmlAttr(domain), nsStreams)
	if _, err := io.WriteString(conn, header); err != nil {
		return nil, nil, fmt.Errorf("send stream header: %w", err)
	}
	// A fresh decoder per stream: after STARTTLS the server starts a new
	// XML document. Prosody sends nothing after <proceed/>, so the previous
	// decoder cannot have buffered bytes of the TLS handshake.
	dec := xml.NewDecoder(conn)
	start, err := nextStart(dec)
	if err != nil {
		return nil, nil, fmt.Errorf("read stream header: %w", err)
	}
	if start.Name.Space != nsStreams || start.Name.Local != "stream" {
		return nil, nil, fmt.Errorf("got <%s xmlns=%q>, want a stream header", start.Name.Local, start.Name.Space)
	}
	start, err = nextStart(dec)
	if err != nil {
		return nil, nil, fmt.Errorf("read stream features: %w", err)
	}
	if start.Name.Space != nsStreams || start.Name.Local != "features" {
		return nil, nil, fmt.Errorf("got <%s xmlns=%q>, want stream features", start.Name.Local, start.Name.Space)
	}
	var f streamFeatures
	if err := dec.DecodeElement(&f, &start); err != nil {
		return nil, nil, fmt.Errorf("decode stream features: %w", err)
	}
	return dec, &f, nil
}

// nextStart returns the next start element from dec.
func nextStart(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			return start, nil
		}
	}
}

// xmlAttr returns s as a single-quoted XML attribute value.
func xmlAttr(s string) string {
	return "'" + strings.NewReplacer("&", "&amp;", "<", "&lt;", "'", "&apos;").Replace(s) + "'"
}

// findInLog returns the first line of prosody.log after offset that
// contains needle, or "".
func (s *Server) findInLog(offset int64, needle string) string {
	f, err := os.Open(s.LogFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	i := bytes.Index(data, []byte(needle))
	if i < 0 {
		return ""
	}
	start := bytes.LastIndexByte(data[:i], '\n') + 1
	end := bytes.IndexByte(data[i:], '\n')
	if end < 0 {
		return string(data[start:])
	}
	return string(data[start : i+end])
}

// tailMax bounds how much of a file tailFile reads.
const tailMax = 1 << 20

// tailFile returns the last n lines of the file at path, or a note saying
// why it cannot.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	off := max(fi.Size()-tailMax, 0)
	data := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(data, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if off > 0 && len(lines) > 0 {
		lines = lines[1:] // probably cut in the middle
	}
	if n >= 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
