package socks5

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// SOCKS5 protocol constants (RFC 1928).
const (
	socksVersion  = 5
	methodNoAuth  = 0
	methodNone    = 0xff
	cmdConnect    = 1
	atypIPv4      = 1
	atypDomain    = 3
	atypIPv6      = 4
	replySucceed  = 0
	replyFailure  = 1
	maxDomainAddr = 255
)

// ErrRefused is wrapped by the errors of Handshake when the streamhost
// answered but refused the bytestream (no acceptable method, a CONNECT
// reply other than success, or the connection closed during the
// handshake): typically a DST.ADDR it does not expect.
var ErrRefused = errors.New("socks5: streamhost refused the bytestream")

// Handshake performs the client side of the XEP-0065 SOCKS5 handshake on
// conn: greeting with the no-authentication method, then CONNECT with
// ATYP domain name, DST.ADDR dstAddr and DST.PORT 0. It honours ctx and
// conn's deadlines. Each message is written in one Write, after the
// previous answer: some streamhosts (Prosody's mod_proxy65) read each as
// one packet.
func Handshake(ctx context.Context, conn net.Conn, dstAddr string) error {
	if len(dstAddr) == 0 || len(dstAddr) > maxDomainAddr {
		return fmt.Errorf("socks5: DST.ADDR of %d bytes", len(dstAddr))
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err := handshake(conn, dstAddr)
	if !stop() && err == nil {
		// ctx ended: the deadline may be in the past by now.
		err = ctx.Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("socks5: handshake: %w", ctx.Err())
		}
		return err
	}
	return conn.SetDeadline(time.Time{})
}

func handshake(conn net.Conn, dstAddr string) error {
	if _, err := conn.Write([]byte{socksVersion, 1, methodNoAuth}); err != nil {
		return fmt.Errorf("socks5: sending greeting: %w", err)
	}
	var b [4]byte
	if _, err := io.ReadFull(conn, b[:2]); err != nil {
		return fmt.Errorf("socks5: reading method selection: %w", refused(err))
	}
	if b[0] != socksVersion {
		return fmt.Errorf("socks5: method selection of version %d: %w", b[0], ErrRefused)
	}
	if b[1] != methodNoAuth {
		return fmt.Errorf("socks5: method %#x selected: %w", b[1], ErrRefused)
	}
	req := make([]byte, 0, 7+len(dstAddr))
	req = append(req, socksVersion, cmdConnect, 0, atypDomain, byte(len(dstAddr)))
	req = append(req, dstAddr...)
	req = append(req, 0, 0)
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("socks5: sending CONNECT: %w", err)
	}
	if _, err := io.ReadFull(conn, b[:4]); err != nil {
		return fmt.Errorf("socks5: reading CONNECT reply: %w", refused(err))
	}
	if b[0] != socksVersion {
		return fmt.Errorf("socks5: CONNECT reply of version %d: %w", b[0], ErrRefused)
	}
	if b[1] != replySucceed {
		return fmt.Errorf("socks5: CONNECT reply %d: %w", b[1], ErrRefused)
	}
	// BND.ADDR and BND.PORT: XEP-0065 wants DST.ADDR echoed, but any
	// well-formed address is accepted.
	var n int
	switch b[3] {
	case atypIPv4:
		n = 4
	case atypIPv6:
		n = 16
	case atypDomain:
		if _, err := io.ReadFull(conn, b[:1]); err != nil {
			return fmt.Errorf("socks5: reading CONNECT reply: %w", refused(err))
		}
		n = int(b[0])
	default:
		return fmt.Errorf("socks5: CONNECT reply with address type %d: %w", b[3], ErrRefused)
	}
	if _, err := io.ReadFull(conn, make([]byte, n+2)); err != nil {
		return fmt.Errorf("socks5: reading CONNECT reply: %w", refused(err))
	}
	return nil
}

// refused marks an end of stream during the handshake as a refusal.
func refused(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("%w (%w)", ErrRefused, err)
	}
	return err
}

// connect opens a TCP connection to addr with d and performs the SOCKS5
// handshake for dstAddr, all within ctx.
func connect(ctx context.Context, d *net.Dialer, addr, dstAddr string) (*net.TCPConn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("socks5: connecting to %s: %w", addr, err)
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("socks5: connecting to %s: not a TCP connection (%T)", addr, c)
	}
	if err := Handshake(ctx, tc, dstAddr); err != nil {
		tc.Close()
		return nil, fmt.Errorf("socks5: %s: %w", addr, err)
	}
	return tc, nil
}
