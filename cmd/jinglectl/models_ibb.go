package main

import (
	"github.com/jinglekit/jinglekit/internal/stanzamodel"
	"github.com/jinglekit/jinglekit/transports/ibb"
)

// registerIBB adds the ibb element models to inspect's registry: the
// XEP-0047 <open/>, <data/> and <close/> that IQs and messages carry. The
// XEP-0261 <transport/> sits inside a Jingle content; its model is
// ibb.Transport.
func registerIBB(r *stanzamodel.Registry) {
	r.Register(ibb.OpenName, "ibb-open", stanzamodel.DecodeAs[ibb.Open]())
	r.Register(ibb.DataName, "ibb-data", stanzamodel.DecodeAs[ibb.Data]())
	r.Register(ibb.CloseName, "ibb-close", stanzamodel.DecodeAs[ibb.Close]())
	r.Register(ibb.TransportName, "ibb-transport", stanzamodel.DecodeAs[ibb.Transport]())
}
