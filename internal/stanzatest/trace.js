'use strict';
// jinglekit's trace of a StanzaJS peer, preloaded by internal/stanzatest
// (node --require) into every `node peer.js` it starts; peer.js itself is
// the read-only harness of ../shared/peers/stanza. It only observes:
//
//   - every data-channel message received (index, length, first 8 bytes,
//     time) and sent (the same, and bufferedAmount before the send), as seen
//     at @roamhq/wrtc's RTCDataChannel.dispatchEvent / send;
//   - the peer connection's datachannel and state-change events;
//   - StanzaJS's FileTransferSession verdict (_maybeReceivedFile): the hash
//     it computed and the ones offered; on a mismatch it writes the bytes
//     the receiver got, message by message, to received-<sid>.bin.
//
// The trace is written to $JINGLEKIT_STANZA_TRACE/trace-<command>-<pid>.jsonl
// (one JSON object a line) when the process exits. Without that variable
// it does nothing.
const fs = require('fs');
const path = require('path');
const DIR = process.env.JINGLEKIT_STANZA_TRACE;
if (DIR) {
    fs.mkdirSync(DIR, { recursive: true });
    const wrtc = require('@roamhq/wrtc');
    const t0 = process.hrtime.bigint();
    const lines = [];
    const rec = (o) => {
        const t = Number(process.hrtime.bigint() - t0) / 1e6;
        lines.push(JSON.stringify(Object.assign({ t: Math.round(t * 1000) / 1000 }, o)));
    };
    const head = (ab) => Buffer.from(ab, 0, Math.min(8, ab.byteLength)).toString('hex');

    const DC = wrtc.RTCDataChannel.prototype;
    const origDispatch = DC.dispatchEvent;
    let nIn = 0;
    DC.dispatchEvent = function (ev) {
        if (ev && ev.type === 'message' && ev.data instanceof ArrayBuffer) {
            // The receiver holds every chunk until its verdict anyway: keeping
            // the same ArrayBuffers costs no copy.
            (this.__jkBufs = this.__jkBufs || []).push(ev.data);
            rec({ ev: 'recv', i: nIn++, len: ev.data.byteLength, head: head(ev.data) });
        } else if (ev && ev.type) {
            rec({ ev: 'dc-' + ev.type });
        }
        return origDispatch.call(this, ev);
    };
    const origSend = DC.send;
    let nOut = 0;
    DC.send = function (data) {
        const ab = data instanceof ArrayBuffer ? data : (ArrayBuffer.isView(data) ? data.buffer : null);
        if (ab) rec({ ev: 'send', i: nOut++, len: ab.byteLength, head: head(ab), buffered: this.bufferedAmount });
        return origSend.call(this, data);
    };
    const PC = wrtc.RTCPeerConnection.prototype;
    const origPCDispatch = PC.dispatchEvent;
    PC.dispatchEvent = function (ev) {
        if (ev && (ev.type === 'datachannel' || /statechange$/.test(ev.type))) rec({ ev: 'pc-' + ev.type });
        return origPCDispatch.call(this, ev);
    };

    const FS = require('stanza').Jingle.FileSession.prototype;
    const origMaybe = FS._maybeReceivedFile;
    FS._maybeReceivedFile = function () {
        const md = this.receiver && this.receiver.metadata;
        const hashes = (md && md.hashes) || [];
        if (hashes.length && md.actualhash) {
            const ok = hashes.some(h => h.value && h.value.toString('hex') === md.actualhash);
            const bufs = (this.channel && this.channel.__jkBufs) || [];
            rec({
                ev: 'verdict', sid: this.sid, ok, actual: md.actualhash, messages: bufs.length,
                offered: hashes.map(h => h.algorithm + '=' + (h.value ? h.value.toString('hex') : ''))
            });
            if (!ok) {
                const p = path.join(DIR, `received-${this.sid}.bin`);
                try {
                    const fd = fs.openSync(p, 'w');
                    for (const b of bufs) fs.writeSync(fd, Buffer.from(b));
                    fs.closeSync(fd);
                    rec({ ev: 'dumped', path: p });
                } catch (e) {
                    rec({ ev: 'dump-failed', error: String(e) });
                }
            }
            if (this.channel) this.channel.__jkBufs = [];
        }
        return origMaybe.apply(this, arguments);
    };

    process.on('exit', (code) => {
        rec({ ev: 'exit', code });
        try {
            fs.writeFileSync(path.join(DIR, `trace-${process.argv[2] || 'node'}-${process.pid}.jsonl`), lines.join('\n') + '\n');
        } catch (e) { /* nothing left to report it to */ }
    });
}
