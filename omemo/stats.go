package omemo

import "sync/atomic"

// Stats counts a Manager's key exchanges since Open: what a peer or a
// test can watch to tell a reused session from a new X3DH. A restarted
// agent that kept its state shows no bundle fetch, no session built and
// no pre-key message for a peer it already had a session with.
type Stats struct {
	// BundlePublishes counts the publications of this device's bundle
	// (at start-up, and after a peer used up a one-time pre-key).
	BundlePublishes uint64
	// BundleFetches counts the peer bundles fetched to start a session
	// (the initiator's half of X3DH).
	BundleFetches uint64
	// SessionsBuilt counts the sessions built: from a fetched bundle, or
	// from a peer's pre-key message that used up one of our pre-keys.
	SessionsBuilt uint64
	// PreKeyMessagesSent counts the keys sent as a PreKeySignalMessage:
	// libsignal sends them until the peer's first answer on the session
	// is decrypted (see Acknowledge).
	PreKeyMessagesSent uint64
	// PreKeyMessagesReceived counts the PreKeySignalMessages decrypted.
	PreKeyMessagesReceived uint64
	// PreKeysUsed counts this device's one-time pre-keys used up by
	// peers (each replaced at once).
	PreKeysUsed uint64
	// AcksSent counts the empty key-transport messages sent to answer a
	// pre-key message; AcksReceived the ones decrypted.
	AcksSent, AcksReceived uint64
}

// Add returns the sum of two Stats.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		BundlePublishes:        s.BundlePublishes + o.BundlePublishes,
		BundleFetches:          s.BundleFetches + o.BundleFetches,
		SessionsBuilt:          s.SessionsBuilt + o.SessionsBuilt,
		PreKeyMessagesSent:     s.PreKeyMessagesSent + o.PreKeyMessagesSent,
		PreKeyMessagesReceived: s.PreKeyMessagesReceived + o.PreKeyMessagesReceived,
		PreKeysUsed:            s.PreKeysUsed + o.PreKeysUsed,
		AcksSent:               s.AcksSent + o.AcksSent,
		AcksReceived:           s.AcksReceived + o.AcksReceived,
	}
}

// counters are a Manager's Stats as they grow.
type counters struct {
	bundlePublishes, bundleFetches, sessionsBuilt atomic.Uint64
	preKeySent, preKeyReceived, preKeysUsed       atomic.Uint64
	acksSent, acksReceived                        atomic.Uint64
}

// Stats returns the Manager's counts of key exchanges since Open.
func (m *Manager) Stats() Stats {
	c := &m.count
	return Stats{
		BundlePublishes:        c.bundlePublishes.Load(),
		BundleFetches:          c.bundleFetches.Load(),
		SessionsBuilt:          c.sessionsBuilt.Load(),
		PreKeyMessagesSent:     c.preKeySent.Load(),
		PreKeyMessagesReceived: c.preKeyReceived.Load(),
		PreKeysUsed:            c.preKeysUsed.Load(),
		AcksSent:               c.acksSent.Load(),
		AcksReceived:           c.acksReceived.Load(),
	}
}
