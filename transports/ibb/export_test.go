package ibb

// SetSeq sets the next sequence numbers of c, to test the wrap from 65535
// to 0 without sending 65536 chunks first. Call it on both ends before any
// data flows: send on the writer, recv on the reader.
func SetSeq(c *Conn, send, recv uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wseq = send
	c.rseq = recv
}

// PayloadsSpliced returns how many payloads p took out of a stream.
func PayloadsSpliced(p *Payloads) uint64 {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

// PayloadsPutIn returns how many references to outgoing payloads p made:
// each one was put back by its write filter, or the data IQ failed.
func PayloadsPutIn(p *Payloads) uint64 {
	if p == nil {
		return 0
	}
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return p.out.next
}
