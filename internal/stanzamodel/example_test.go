package stanzamodel_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"strings"

	"github.com/jinglekit/jinglekit/internal/stanzamodel"
)

// A package with its own element model registers it next to the defaults.
func ExampleRegistry_Register() {
	type open struct {
		XMLName   xml.Name `xml:"http://jabber.org/protocol/ibb open" json:"-"`
		BlockSize int      `xml:"block-size,attr" json:"block_size"`
		SID       string   `xml:"sid,attr" json:"sid"`
	}
	r := stanzamodel.NewDefault()
	r.Register(xml.Name{Space: "http://jabber.org/protocol/ibb", Local: "open"}, "ibb-open", stanzamodel.DecodeAs[open]())

	ss, err := r.Parse(strings.NewReader(`<iq type='set' id='a1'>
  <open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='i781hf64'/>
</iq>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ss[0].Payload[0].Model.(*open).BlockSize)
	enc := json.NewEncoder(os.Stdout)
	_ = enc.Encode(ss[0])
	b, _ := stanzamodel.MarshalIndent(ss[0], "", "  ")
	fmt.Println(string(b))
	// Output:
	// 4096
	// {"stanza":"iq","ns":"jabber:client","attrs":{"type":"set","id":"a1"},"payload":[{"type":"ibb-open","name":"open","ns":"http://jabber.org/protocol/ibb","model":{"block_size":4096,"sid":"i781hf64"}}]}
	// <iq xmlns="jabber:client" type="set" id="a1">
	//   <open xmlns="http://jabber.org/protocol/ibb" block-size="4096" sid="i781hf64"/>
	// </iq>
}
