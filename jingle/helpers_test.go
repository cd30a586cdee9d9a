package jingle_test

import (
	"encoding/xml"

	"mellium.im/xmlstream"
)

type xmlstreamTokenReadEncoder = xmlstream.TokenReadEncoder

func xmlstreamCopy(w xmlstream.TokenWriter, r xml.TokenReader) (int, error) {
	return xmlstream.Copy(w, r)
}
