package jmi_test

import (
	"encoding/xml"
	"testing"

	"github.com/jinglekit/jinglekit/internal/xmltest"
	"github.com/jinglekit/jinglekit/jmi"
)

// FuzzJMI decodes a XEP-0353 element (<propose/>, <proceed/>, <reject/>…)
// as any contact may send it: no panic, and what decodes round-trips
// unchanged.
func FuzzJMI(f *testing.F) {
	for _, a := range []string{jmi.ActionPropose, jmi.ActionRinging, jmi.ActionProceed, jmi.ActionReject, jmi.ActionRetract, jmi.ActionFinish} {
		xmltest.SeedElements(f, xml.Name{Space: jmi.NS, Local: a}, "0353")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		xmltest.FuzzRoundTrip[jmi.Message](t, data)
	})
}
