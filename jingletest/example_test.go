package jingletest_test

import (
	"fmt"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
)

// The test kit of application and transport authors: App stands for an
// application, PipeMethod for a stream transport whose two sides meet in
// an Exchange (in memory), BrokenNS for one that fails, to exercise
// fallbacks. See package jingle's Example for a whole session with them.
func Example() {
	x := jingletest.NewExchange()
	m := &jingle.Manager{}
	fmt.Println(m.RegisterApplication(jingletest.NewApp()))
	fmt.Println(m.RegisterTransport(&jingletest.PipeMethod{X: x}))
	fmt.Println(m.RegisterTransport(&jingletest.PipeMethod{X: x, NS: jingletest.BrokenNS, Fail: true}))
	fmt.Println(m.Transports())
	fmt.Println(jingletest.Desc("file"))
	// Output:
	// <nil>
	// <nil>
	// <nil>
	// [urn:jinglekit:test:transport:pipe:0 urn:jinglekit:test:transport:broken:0]
	// <description xmlns="urn:jinglekit:test:app:0" label="file"></description>
}
