package main

import (
	"encoding/xml"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/stanzamodel"
)

// registerFileTransfer adds the filetransfer element models to inspect's registry.
//
// None of them is a stanza child: <description/> sits in a Jingle
// <content/>, <checksum/> and <received/> in a session-info <jingle/>.
// They are registered by name so that Registry.Decode turns those nested
// jingle.Elements into models, in every namespace version the package
// accepts (:5, :4, :3).
func registerFileTransfer(r *stanzamodel.Registry) {
	for _, ns := range filetransfer.Namespaces() {
		r.Register(xml.Name{Space: ns, Local: "description"}, "file-description", stanzamodel.DecodeAs[filetransfer.Description]())
		r.Register(xml.Name{Space: ns, Local: "checksum"}, "file-checksum", stanzamodel.DecodeAs[filetransfer.Checksum]())
		r.Register(xml.Name{Space: ns, Local: "received"}, "file-received", stanzamodel.DecodeAs[filetransfer.Received]())
	}
}
