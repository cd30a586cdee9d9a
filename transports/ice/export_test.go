package ice

// RemoteCandidateCount returns how many of the peer's candidates the link
// handed to its ICE agent.
func (l *Link) RemoteCandidateCount() int {
	l.agent.mu.Lock()
	defer l.agent.mu.Unlock()
	return l.agent.remoteCount
}

// RemoteUfrag returns the peer's current ICE ufrag.
func (l *Link) RemoteUfrag() string {
	u, _ := l.agent.remote()
	return u
}

// LocalUfrag returns this side's current ICE ufrag and generation.
func (l *Link) LocalUfrag() (string, int) {
	u, _, g := l.agent.credentials()
	return u, g
}
