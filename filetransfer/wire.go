package filetransfer

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jinglekit/jinglekit/jingle"
)

// Namespaces of XEP-0234 and XEP-0300.
const (
	// NS is the application namespace this package sends (XEP-0234 0.19).
	NS = "urn:xmpp:jingle:apps:file-transfer:5"
	// NS4 and NS3 are older versions of the application, accepted from
	// peers and answered in kind. NS3 wraps the <file/> in <offer/> or
	// <request/>.
	NS4 = "urn:xmpp:jingle:apps:file-transfer:4"
	NS3 = "urn:xmpp:jingle:apps:file-transfer:3"
	// NSErrors qualifies the application-specific reasons
	// <file-not-available/> and <file-too-large/>.
	NSErrors = "urn:xmpp:jingle:apps:file-transfer:errors:0"
	// NSHashes is the XEP-0300 namespace of <hash/> and <hash-used/>
	// (base64 of the digest).
	NSHashes = "urn:xmpp:hashes:2"
	// NSHashes1 is the namespace of hashes in :3 and :4 offers, whose
	// encoding was not specified (hex in practice); accepted on input.
	NSHashes1 = "urn:xmpp:hashes:1"
	// NSHashFunctionPrefix prefixes the disco feature of each hash
	// function (XEP-0300 §4).
	NSHashFunctionPrefix = "urn:xmpp:hash-function-text-names:"
)

// Namespaces returns the application namespaces, preferred first.
func Namespaces() []string { return []string{NS, NS4, NS3} }

func knownNS(ns string) bool { return ns == NS || ns == NS4 || ns == NS3 }

// Text is a human-readable text with an optional language, such as a
// <desc/> element.
type Text struct {
	Lang  string `json:"lang,omitempty"`
	Value string `json:"value"`
}

// Hash is the XEP-0300 <hash/> element. Value is the character data as it
// travels (see Digest for its meaning). An empty Value with an algo is how
// :4 offers announce the algorithm (like <hash-used/>).
type Hash struct {
	// XMLName is {urn:xmpp:hashes:2 hash} (or :1 from old peers); the zero
	// value means urn:xmpp:hashes:2.
	XMLName xml.Name `json:"-"`
	Algo    string   `xml:"algo,attr" json:"algo"`
	Value   string   `xml:",chardata" json:"value,omitempty"`
}

// MarshalXML implements xml.Marshaler.
func (h Hash) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	name := h.XMLName
	if name.Local == "" {
		name = xml.Name{Space: NSHashes, Local: "hash"}
	}
	start := xml.StartElement{Name: name, Attr: []xml.Attr{{Name: xml.Name{Local: "algo"}, Value: h.Algo}}}
	return e.EncodeElement(h.Value, start)
}

// HashUsed is the XEP-0300 <hash-used/> element: the algorithm whose value
// will follow in a <checksum/>.
type HashUsed struct {
	XMLName xml.Name `json:"-"`
	Algo    string   `xml:"algo,attr" json:"algo"`
}

// MarshalXML implements xml.Marshaler.
func (h HashUsed) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	name := h.XMLName
	if name.Local == "" {
		name = xml.Name{Space: NSHashes, Local: "hash-used"}
	}
	start := xml.StartElement{Name: name, Attr: []xml.Attr{{Name: xml.Name{Local: "algo"}, Value: h.Algo}}}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

// Range is the <range/> element: which part of the file is transferred.
// Offset defaults to 0 and Length to the rest of the file. Hashes, in a
// <checksum/>, cover the range only.
type Range struct {
	Offset *int64           `json:"offset,omitempty"`
	Length *int64           `json:"length,omitempty"`
	Hashes []Hash           `json:"hashes,omitempty"`
	Extra  []jingle.Element `json:"extra,omitempty"`
	order  []childRef
}

// OffsetValue returns the offset, 0 when absent.
func (r *Range) OffsetValue() int64 {
	if r == nil || r.Offset == nil {
		return 0
	}
	return *r.Offset
}

// LengthValue returns the length and whether it was given.
func (r *Range) LengthValue() (int64, bool) {
	if r == nil || r.Length == nil {
		return 0, false
	}
	return *r.Length, true
}

// File is the <file/> element of XEP-0234: the file's metadata and hashes.
// Its children keep their document order when a decoded File is encoded
// again; fields set on a new File are written in the schema's order.
type File struct {
	// Date is the last modification time as written (XEP-0082 DateTime);
	// see Time.
	Date      string           `json:"date,omitempty"`
	Desc      []Text           `json:"desc,omitempty"`
	MediaType string           `json:"media_type,omitempty"`
	Name      string           `json:"name,omitempty"`
	Size      *int64           `json:"size,omitempty"`
	Range     *Range           `json:"range,omitempty"`
	Hashes    []Hash           `json:"hashes,omitempty"`
	HashUsed  []HashUsed       `json:"hash_used,omitempty"`
	Extra     []jingle.Element `json:"extra,omitempty"`
	order     []childRef
}

// Time parses Date; the zero time when it is absent or malformed.
func (f *File) Time() time.Time {
	s := strings.TrimSpace(f.Date)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// SizeValue returns the size and whether it was given.
func (f *File) SizeValue() (int64, bool) {
	if f == nil || f.Size == nil {
		return 0, false
	}
	return *f.Size, true
}

// Description returns the text of the first <desc/> (preferring one without
// xml:lang).
func (f *File) Description() string {
	for _, d := range f.Desc {
		if d.Lang == "" {
			return d.Value
		}
	}
	if len(f.Desc) > 0 {
		return f.Desc[0].Value
	}
	return ""
}

type childKind int

const (
	kDate childKind = iota + 1
	kDesc
	kMediaType
	kName
	kSize
	kRange
	kHash
	kHashUsed
	kExtra
)

// childRef records one child in document order: its kind and, for repeated
// children, its index in the field.
type childRef struct {
	kind childKind
	i    int
}

func int64Ptr(v int64) *int64 { return &v }

// UnmarshalXML implements xml.Unmarshaler. Children in the <file/>'s own
// namespace are the XEP-0234 metadata, <hash/> and <hash-used/> in either
// hashes namespace are hashes, anything else goes to Extra.
func (f *File) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	*f = File{}
	ns := start.Name.Space
	return jingle.DecodeChildren(d, func(t xml.StartElement) error {
		isHashNS := t.Name.Space == NSHashes || t.Name.Space == NSHashes1
		switch {
		case t.Name.Space == ns && t.Name.Local == "date":
			if err := d.DecodeElement(&f.Date, &t); err != nil {
				return err
			}
			f.order = append(f.order, childRef{kind: kDate})
		case t.Name.Space == ns && t.Name.Local == "desc":
			var x xmlText
			if err := d.DecodeElement(&x, &t); err != nil {
				return err
			}
			f.order = append(f.order, childRef{kDesc, len(f.Desc)})
			f.Desc = append(f.Desc, Text{Lang: x.Lang, Value: x.Body})
		case t.Name.Space == ns && t.Name.Local == "media-type":
			if err := d.DecodeElement(&f.MediaType, &t); err != nil {
				return err
			}
			f.order = append(f.order, childRef{kind: kMediaType})
		case t.Name.Space == ns && t.Name.Local == "name":
			if err := d.DecodeElement(&f.Name, &t); err != nil {
				return err
			}
			f.order = append(f.order, childRef{kind: kName})
		case t.Name.Space == ns && t.Name.Local == "size":
			var s string
			if err := d.DecodeElement(&s, &t); err != nil {
				return err
			}
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return fmt.Errorf("filetransfer: <size>%q: %w", s, err)
			}
			f.Size = &n
			f.order = append(f.order, childRef{kind: kSize})
		case t.Name.Space == ns && t.Name.Local == "range":
			r := new(Range)
			if err := r.unmarshal(d, t); err != nil {
				return err
			}
			f.Range = r
			f.order = append(f.order, childRef{kind: kRange})
		case isHashNS && t.Name.Local == "hash":
			var h Hash
			if err := d.DecodeElement(&h, &t); err != nil {
				return err
			}
			f.order = append(f.order, childRef{kHash, len(f.Hashes)})
			f.Hashes = append(f.Hashes, h)
		case isHashNS && t.Name.Local == "hash-used":
			var h HashUsed
			if err := d.DecodeElement(&h, &t); err != nil {
				return err
			}
			f.order = append(f.order, childRef{kHashUsed, len(f.HashUsed)})
			f.HashUsed = append(f.HashUsed, h)
		default:
			var x jingle.Element
			if err := d.DecodeElement(&x, &t); err != nil {
				return err
			}
			f.order = append(f.order, childRef{kExtra, len(f.Extra)})
			f.Extra = append(f.Extra, x)
		}
		return nil
	})
}

// MarshalXML implements xml.Marshaler. The children are written unqualified
// so that they take the namespace of the enclosing description, checksum or
// wrapper.
func (f File) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if start.Name.Local == "" {
		start.Name.Local = "file"
	}
	start.Attr = nil
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	emitted := map[childRef]bool{}
	emit := func(c childRef, fromOrder bool) error {
		if emitted[c] {
			return nil
		}
		local := func(name, v string) error {
			if v == "" && !fromOrder {
				return nil
			}
			emitted[c] = true
			return e.EncodeElement(v, xml.StartElement{Name: xml.Name{Local: name}})
		}
		switch c.kind {
		case kDate:
			return local("date", f.Date)
		case kDesc:
			if c.i >= len(f.Desc) {
				return nil
			}
			emitted[c] = true
			return e.EncodeElement(xmlText{Lang: f.Desc[c.i].Lang, Body: f.Desc[c.i].Value}, xml.StartElement{Name: xml.Name{Local: "desc"}})
		case kMediaType:
			return local("media-type", f.MediaType)
		case kName:
			return local("name", f.Name)
		case kSize:
			if f.Size == nil {
				return nil
			}
			emitted[c] = true
			return e.EncodeElement(strconv.FormatInt(*f.Size, 10), xml.StartElement{Name: xml.Name{Local: "size"}})
		case kRange:
			if f.Range == nil {
				return nil
			}
			emitted[c] = true
			return f.Range.marshal(e)
		case kHash:
			if c.i >= len(f.Hashes) {
				return nil
			}
			emitted[c] = true
			return e.Encode(f.Hashes[c.i])
		case kHashUsed:
			if c.i >= len(f.HashUsed) {
				return nil
			}
			emitted[c] = true
			return e.Encode(f.HashUsed[c.i])
		case kExtra:
			if c.i >= len(f.Extra) {
				return nil
			}
			emitted[c] = true
			return e.Encode(f.Extra[c.i])
		}
		return nil
	}
	for _, c := range f.order {
		if err := emit(c, true); err != nil {
			return err
		}
	}
	// Whatever the order does not cover, in the schema's order.
	canonical := []childRef{{kind: kDate}}
	for i := range f.Desc {
		canonical = append(canonical, childRef{kDesc, i})
	}
	canonical = append(canonical, childRef{kind: kMediaType}, childRef{kind: kName}, childRef{kind: kSize}, childRef{kind: kRange})
	for i := range f.Hashes {
		canonical = append(canonical, childRef{kHash, i})
	}
	for i := range f.HashUsed {
		canonical = append(canonical, childRef{kHashUsed, i})
	}
	for i := range f.Extra {
		canonical = append(canonical, childRef{kExtra, i})
	}
	for _, c := range canonical {
		if err := emit(c, false); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

func (r *Range) unmarshal(d *xml.Decoder, start xml.StartElement) error {
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "offset", "length":
			n, err := strconv.ParseInt(strings.TrimSpace(a.Value), 10, 64)
			if err != nil {
				return fmt.Errorf("filetransfer: <range %s=%q>: %w", a.Name.Local, a.Value, err)
			}
			if a.Name.Local == "offset" {
				r.Offset = &n
			} else {
				r.Length = &n
			}
		}
	}
	return jingle.DecodeChildren(d, func(t xml.StartElement) error {
		if (t.Name.Space == NSHashes || t.Name.Space == NSHashes1) && t.Name.Local == "hash" {
			var h Hash
			if err := d.DecodeElement(&h, &t); err != nil {
				return err
			}
			r.order = append(r.order, childRef{kHash, len(r.Hashes)})
			r.Hashes = append(r.Hashes, h)
			return nil
		}
		var x jingle.Element
		if err := d.DecodeElement(&x, &t); err != nil {
			return err
		}
		r.order = append(r.order, childRef{kExtra, len(r.Extra)})
		r.Extra = append(r.Extra, x)
		return nil
	})
}

func (r *Range) marshal(e *xml.Encoder) error {
	start := xml.StartElement{Name: xml.Name{Local: "range"}}
	if r.Offset != nil {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "offset"}, Value: strconv.FormatInt(*r.Offset, 10)})
	}
	if r.Length != nil {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "length"}, Value: strconv.FormatInt(*r.Length, 10)})
	}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	emitted := map[childRef]bool{}
	all := append([]childRef(nil), r.order...)
	for i := range r.Hashes {
		all = append(all, childRef{kHash, i})
	}
	for i := range r.Extra {
		all = append(all, childRef{kExtra, i})
	}
	for _, c := range all {
		if emitted[c] {
			continue
		}
		switch {
		case c.kind == kHash && c.i < len(r.Hashes):
			emitted[c] = true
			if err := e.Encode(r.Hashes[c.i]); err != nil {
				return err
			}
		case c.kind == kExtra && c.i < len(r.Extra):
			emitted[c] = true
			if err := e.Encode(r.Extra[c.i]); err != nil {
				return err
			}
		}
	}
	return e.EncodeToken(start.End())
}

// MarshalXML implements xml.Marshaler for a Range used on its own.
func (r Range) MarshalXML(e *xml.Encoder, _ xml.StartElement) error { return r.marshal(e) }

// UnmarshalXML implements xml.Unmarshaler.
func (r *Range) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	*r = Range{}
	return r.unmarshal(d, start)
}

type xmlText struct {
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	Body string `xml:",chardata"`
}

// Description is the <description/> element of the file-transfer
// application. In NS and NS4 it holds the <file/> directly; in NS3 the
// <file/> is wrapped in <offer/> or <request/> (Legacy says which).
type Description struct {
	// XMLName is {NS description} (or NS4, NS3); the zero value means NS.
	XMLName xml.Name `json:"-"`
	File    *File    `json:"file,omitempty"`
	// Legacy is "offer" or "request" for an NS3 description, else "".
	Legacy string           `json:"legacy,omitempty"`
	Extra  []jingle.Element `json:"extra,omitempty"`
	// extraBefore is the number of extra children before <file/>.
	extraBefore int
}

// Namespace returns the description's namespace (NS when unset).
func (d *Description) Namespace() string {
	if d.XMLName.Space == "" {
		return NS
	}
	return d.XMLName.Space
}

// UnmarshalXML implements xml.Unmarshaler.
func (d *Description) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	*d = Description{XMLName: start.Name}
	ns := start.Name.Space
	return jingle.DecodeChildren(dec, func(t xml.StartElement) error {
		switch {
		case t.Name.Space == ns && t.Name.Local == "file" && d.File == nil:
			f := new(File)
			if err := dec.DecodeElement(f, &t); err != nil {
				return err
			}
			d.File = f
			d.extraBefore = len(d.Extra)
		case t.Name.Space == ns && (t.Name.Local == "offer" || t.Name.Local == "request") && d.File == nil:
			var w struct {
				File *File `xml:"file"`
			}
			if err := dec.DecodeElement(&w, &t); err != nil {
				return err
			}
			d.Legacy = t.Name.Local
			d.File = w.File
			if d.File == nil {
				d.File = &File{}
			}
			d.extraBefore = len(d.Extra)
		default:
			var x jingle.Element
			if err := dec.DecodeElement(&x, &t); err != nil {
				return err
			}
			d.Extra = append(d.Extra, x)
		}
		return nil
	})
}

// MarshalXML implements xml.Marshaler.
func (d Description) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Space: d.Namespace(), Local: "description"}}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	before := min(d.extraBefore, len(d.Extra))
	if d.File == nil {
		before = len(d.Extra)
	}
	for _, x := range d.Extra[:before] {
		if err := e.Encode(x); err != nil {
			return err
		}
	}
	if d.File != nil {
		fileStart := xml.StartElement{Name: xml.Name{Local: "file"}}
		if d.Legacy != "" {
			w := xml.StartElement{Name: xml.Name{Local: d.Legacy}}
			if err := e.EncodeToken(w); err != nil {
				return err
			}
			if err := e.EncodeElement(d.File, fileStart); err != nil {
				return err
			}
			if err := e.EncodeToken(w.End()); err != nil {
				return err
			}
		} else if err := e.EncodeElement(d.File, fileStart); err != nil {
			return err
		}
	}
	for _, x := range d.Extra[before:] {
		if err := e.Encode(x); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// Checksum is the session-info <checksum/>: the hashes of a content's file,
// sent by the File Sender after (or while) the data flows.
type Checksum struct {
	// XMLName is {NS checksum} (or NS4, NS3); the zero value means NS.
	XMLName xml.Name       `json:"-"`
	Creator jingle.Creator `json:"creator,omitempty"`
	Name    string         `json:"name,omitempty"`
	File    File           `json:"file"`
}

type checksumWire struct {
	XMLName xml.Name
	Creator jingle.Creator `xml:"creator,attr,omitempty"`
	Name    string         `xml:"name,attr,omitempty"`
	File    File           `xml:"file"`
}

// MarshalXML implements xml.Marshaler.
func (c Checksum) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	name := c.XMLName
	if name.Local == "" {
		name = xml.Name{Space: NS, Local: "checksum"}
	}
	return e.Encode(checksumWire{XMLName: name, Creator: c.Creator, Name: c.Name, File: c.File})
}

// UnmarshalXML implements xml.Unmarshaler.
func (c *Checksum) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var w checksumWire
	if err := d.DecodeElement(&w, &start); err != nil {
		return err
	}
	*c = Checksum{XMLName: start.Name, Creator: w.Creator, Name: w.Name, File: w.File}
	return nil
}

// Received is the session-info <received/>: the File Receiver got the
// content's file complete and verified.
type Received struct {
	// XMLName is {NS received} (or NS4); the zero value means NS.
	XMLName xml.Name       `json:"-"`
	Creator jingle.Creator `json:"creator,omitempty"`
	Name    string         `json:"name,omitempty"`
}

type receivedWire struct {
	XMLName xml.Name
	Creator jingle.Creator `xml:"creator,attr,omitempty"`
	Name    string         `xml:"name,attr,omitempty"`
}

// MarshalXML implements xml.Marshaler.
func (r Received) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	name := r.XMLName
	if name.Local == "" {
		name = xml.Name{Space: NS, Local: "received"}
	}
	return e.Encode(receivedWire{XMLName: name, Creator: r.Creator, Name: r.Name})
}

// UnmarshalXML implements xml.Unmarshaler.
func (r *Received) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var w receivedWire
	if err := d.DecodeElement(&w, &start); err != nil {
		return err
	}
	*r = Received{XMLName: start.Name, Creator: w.Creator, Name: w.Name}
	return nil
}

// Application-specific reason conditions (XEP-0234 §9), in NSErrors.
const (
	CondFileNotAvailable = "file-not-available"
	CondFileTooLarge     = "file-too-large"
)

// ReasonElement returns the application-specific reason element cond
// (CondFileNotAvailable or CondFileTooLarge), for jingle.Reason.Extra.
func ReasonElement(cond string) jingle.Element {
	return jingle.Element{XMLName: xml.Name{Space: NSErrors, Local: cond}}
}

func hasReasonExtra(r *jingle.Reason, cond string) bool {
	if r == nil {
		return false
	}
	for _, x := range r.Extra {
		if x.XMLName.Space == NSErrors && x.XMLName.Local == cond {
			return true
		}
	}
	return false
}
