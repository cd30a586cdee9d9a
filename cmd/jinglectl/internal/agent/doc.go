// Package agent is the wiring behind jinglectl: an account logged in with
// xmppclient, a jingle.Manager with the file-transfer application
// (filetransfer.Handler) and the SOCKS5, ICE and IBB transports, the presence
// and roster that decide whom files go to and come from, and the headless
// transfer agent built on them.
//
// # Conn
//
// [Connect] logs in and returns a [Conn]: it advertises Jingle, file
// transfer :5/:4/:3, the transports and the hash functions (XEP-0115 caps
// and disco#info), tracks the available presence of contacts, keeps the
// roster (fetched at login, updated by pushes) and, with
// [ReceiveOptions], receives files from allowed senders only (listed
// JIDs, else mutual roster contacts). [Conn.Resolve] turns a bare JID into
// the best online resource with Jingle file transfer, [ChooseTransports]
// intersects the transports with the peer's, and [Conn.Send] sends files
// in one session. Everything that happens to a file is reported as an
// [Event] (the JSON schema of jinglectl --json), from transport and
// application wrappers keyed by Jingle session id.
//
// # Agent
//
// An [Agent] stays logged in (logging in again with exponential backoff
// when the stream ends), receives per policy, and sends the files queued
// through its control socket ([ListenControl], [DialControl], JSON lines
// of [Request] and [Reply]), one session per file, retrying those whose
// failure may pass ([Retryable]); a retry resumes the receiver's .part by
// range, and carries the file's hash so that a receiver that already has
// it keeps one copy. On shutdown the sessions are terminated, .part files
// stay, and the unfinished queue is written to the state file.
//
// # Config
//
// [Config] is read from a TOML file ([Load], with pelletier/go-toml/v2);
// unknown keys are errors with their line. ICE takes its STUN and TURN
// servers from transfer.ice_servers ([ParseICEServer]), else from the
// user's server (XEP-0215), see [Config.ICEConfig]; serverless mode
// ([ConnectLocal]) uses host candidates only.
package agent
