// Package rtp implements Jingle RTP sessions (XEP-0167) — voice and video
// calls — over ICE-UDP (XEP-0176) with DTLS-SRTP (XEP-0320), on top of
// pion/webrtc.
//
// # Wire format and SDP
//
// [Description] models <description xmlns='urn:xmpp:jingle:apps:rtp:1'/>
// with its payload types and parameters, rtcp-mux, bandwidth and SDES
// encryption, plus RTCP feedback (XEP-0293), header extensions (XEP-0294)
// and sources (XEP-0339); [Group] is XEP-0338's <group/> under <jingle/>.
// The session-info payloads (active, hold, unhold, mute, unmute, ringing)
// and the RTP reason conditions are small structs. The transport is the
// ICE-UDP <transport/> of package transports/ice, whose Fingerprint carries
// the DTLS fingerprint and setup role.
//
// [FromSDP] and [ToSDP] map between pion's SDP and the Jingle form ([Media]:
// contents and groups): m= sections are contents named by their mid,
// a=rtpmap/fmtp/rtcp-fb/extmap/ssrc/ssrc-group/msid/rtcp-mux/crypto and b=
// lines map to the description, a=ice-ufrag/pwd/candidate/fingerprint/setup
// to the transport, a=group to groups, a=sendrecv… to the content's
// senders.
//
// # Calls
//
// A [Call] is one Jingle RTP session driven by a pion PeerConnection. The
// Jingle session layer (package jingle) carries the signalling: each
// content's transport is an ICE-UDP transport made by [Method], a thin
// adapter that hands the PeerConnection's candidates to the peer
// (transport-info) and the peer's to the PeerConnection; ICE, DTLS-SRTP
// and RTP run inside pion. DTLS-SRTP is mandatory: an offer whose
// transport lacks a fingerprint is terminated with security-error and
// <crypto-required/>.
//
// Register a [Handler] (the Application for the RTP namespace, and its
// Method) on a jingle.Manager; incoming calls reach Handler.OnCall, and
// [Handler.Place] starts outgoing ones — after XEP-0353 Jingle Message Initiation
// when a jmi.Manager is configured.
//
// Media from and to files: [NewOggSource] and [NewIVFSource] feed local tracks from
// Ogg/Opus and IVF/VP8 files, [RecordOgg] and [RecordIVF] write remote
// tracks, and [Recorder] records every remote track of a call into a
// directory.
package rtp
