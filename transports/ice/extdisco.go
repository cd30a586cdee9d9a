package ice

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
)

// Namespaces of XEP-0215 External Service Discovery.
const (
	NSExtDisco  = "urn:xmpp:extdisco:2"
	NSExtDisco1 = "urn:xmpp:extdisco:1"
)

// Defaults of Discovery.
const (
	DefaultRefreshMargin = time.Minute
	DefaultDiscoveryTTL  = 10 * time.Minute
	DefaultQueryTimeout  = 10 * time.Second
	// MaxServices bounds the services taken from one answer.
	MaxServices = 32
)

// Services is XEP-0215's <services/>: a query (empty), its answer, or a
// push. It is read in both namespace versions.
type Services struct {
	// XMLName is the element's name; the zero value means <services/> in
	// NSExtDisco.
	XMLName  xml.Name  `json:"-"`
	Type     string    `xml:"type,attr,omitempty" json:"type,omitempty"`
	Services []Service `xml:"service" json:"services,omitempty"`
}

// ExtCredentials is XEP-0215's <credentials/>: a request for the
// credentials of restricted services, and its answer.
type ExtCredentials struct {
	// XMLName is the element's name; the zero value means <credentials/>
	// in NSExtDisco.
	XMLName  xml.Name  `json:"-"`
	Services []Service `xml:"service" json:"services,omitempty"`
}

// MarshalXML implements xml.Marshaler.
func (s Services) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if s.XMLName.Local == "" {
		s.XMLName = xml.Name{Space: NSExtDisco, Local: "services"}
	}
	type plain Services
	return e.EncodeElement(plain(s), xml.StartElement{Name: s.XMLName})
}

// MarshalXML implements xml.Marshaler.
func (c ExtCredentials) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if c.XMLName.Local == "" {
		c.XMLName = xml.Name{Space: NSExtDisco, Local: "credentials"}
	}
	type plain ExtCredentials
	return e.EncodeElement(plain(c), xml.StartElement{Name: c.XMLName})
}

// Service is one <service/> of XEP-0215 §3. Attributes are kept as text.
type Service struct {
	Action     string `xml:"action,attr,omitempty" json:"action,omitempty"`
	Expires    string `xml:"expires,attr,omitempty" json:"expires,omitempty"`
	Host       string `xml:"host,attr,omitempty" json:"host,omitempty"`
	Name       string `xml:"name,attr,omitempty" json:"name,omitempty"`
	Password   string `xml:"password,attr,omitempty" json:"password,omitempty"`
	Port       string `xml:"port,attr,omitempty" json:"port,omitempty"`
	Restricted string `xml:"restricted,attr,omitempty" json:"restricted,omitempty"`
	Transport  string `xml:"transport,attr,omitempty" json:"transport,omitempty"`
	Type       string `xml:"type,attr,omitempty" json:"type,omitempty"`
	Username   string `xml:"username,attr,omitempty" json:"username,omitempty"`
	// Extra holds extended information (a data form).
	Extra []jingle.Element `xml:",any" json:"extra,omitempty"`
}

func (s Service) restricted() bool { return s.Restricted == "1" || s.Restricted == "true" }

// server turns a STUN or TURN service into a Server; ok is false for
// other services and for ones this package cannot use.
func (s Service) server() (Server, bool) {
	host := strings.TrimSpace(s.Host)
	if host == "" || strings.ContainsAny(host, "/?@ ") {
		return Server{}, false
	}
	port := s.Port
	transport := strings.ToLower(s.Transport)
	var scheme string
	switch strings.ToLower(s.Type) {
	case "stun":
		if transport != "" && transport != "udp" {
			return Server{}, false
		}
		scheme, transport = "stun", ""
	case "turn":
		if transport == "" {
			transport = "udp"
		}
		scheme = "turn"
	case "turns":
		transport = "tcp"
		scheme = "turns"
	default:
		return Server{}, false
	}
	if transport != "" && transport != "udp" && transport != "tcp" {
		return Server{}, false
	}
	if port == "" {
		port = "3478"
		if scheme == "turns" {
			port = "5349"
		}
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return Server{}, false
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	srv := Server{URL: scheme + ":" + host + ":" + port, Username: s.Username, Password: s.Password}
	if transport != "" {
		srv.URL += "?transport=" + transport
	}
	if s.Expires != "" {
		if t, err := time.Parse(time.RFC3339, s.Expires); err == nil {
			srv.Expires = t
		}
	}
	if scheme != "stun" && (srv.Username == "" || srv.Password == "") {
		return Server{}, false
	}
	return srv, true
}

// Discovery finds the STUN and TURN servers the user's own server knows
// (XEP-0215), asking for the credentials of restricted services, and
// caches them until shortly before the first credentials expire: a later
// call asks again, so that each transport starts with credentials that are
// still valid. The zero value asks the domain of the local JID. Share one
// Discovery between the methods of one account.
type Discovery struct {
	// Server is the entity asked; the zero JID means the local domain.
	Server jid.JID
	// RefreshMargin is how long before they expire credentials are renewed
	// (default 1 minute, at most half their lifetime).
	RefreshMargin time.Duration
	// TTL is how long an answer without expiry is kept (default 10 min).
	TTL time.Duration
	// Timeout bounds each query when the caller's context has no deadline
	// (default 10s).
	Timeout time.Duration

	mu      sync.Mutex
	owner   string
	cache   []Server
	until   time.Time
	queries int
}

// Queries returns how many <services/> queries were sent so far.
func (d *Discovery) Queries() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries
}

// Servers returns the STUN and TURN servers announced to the account s
// is logged in as, from the cache while it is valid.
func (d *Discovery) Servers(ctx context.Context, s jingle.IQSender) ([]Server, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	local := s.LocalAddr().Bare().String()
	now := time.Now()
	if d.owner == local && now.Before(d.until) {
		return append([]Server(nil), d.cache...), nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, orDefault(d.Timeout, DefaultQueryTimeout))
		defer cancel()
	}
	server := d.Server
	if server.String() == "" {
		server = s.LocalAddr().Domain()
	}
	d.queries++
	var list Services
	if err := queryIQ(ctx, s, server, Services{XMLName: xml.Name{Space: NSExtDisco, Local: "services"}}, &list); err != nil {
		return nil, err
	}
	var (
		out  []Server
		errs []error
	)
	for i, svc := range list.Services {
		if i >= MaxServices {
			break
		}
		if svc.restricted() && (svc.Username == "" || svc.Password == "") && strings.HasPrefix(strings.ToLower(svc.Type), "turn") {
			creds, err := d.credentials(ctx, s, server, svc)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			svc.Username, svc.Password = creds.Username, creds.Password
			if creds.Expires != "" {
				svc.Expires = creds.Expires
			}
		}
		if srv, ok := svc.server(); ok {
			out = append(out, srv)
		}
	}
	d.owner, d.cache, d.until = local, out, d.validUntil(now, out)
	return append([]Server(nil), out...), errors.Join(errs...)
}

// validUntil returns when a fresh answer must be renewed.
func (d *Discovery) validUntil(now time.Time, servers []Server) time.Time {
	until := now.Add(orDefault(d.TTL, DefaultDiscoveryTTL))
	margin := orDefault(d.RefreshMargin, DefaultRefreshMargin)
	for _, s := range servers {
		if s.Expires.IsZero() {
			continue
		}
		m := margin
		if life := s.Expires.Sub(now); m > life/2 {
			m = life / 2
		}
		if t := s.Expires.Add(-m); t.Before(until) {
			until = t
		}
	}
	return until
}

// credentials asks for the credentials of one restricted service.
func (d *Discovery) credentials(ctx context.Context, s jingle.IQSender, server jid.JID, svc Service) (Service, error) {
	req := ExtCredentials{XMLName: xml.Name{Space: NSExtDisco, Local: "credentials"},
		Services: []Service{{Type: svc.Type, Host: svc.Host, Port: svc.Port}}}
	var resp ExtCredentials
	if err := queryIQ(ctx, s, server, req, &resp); err != nil {
		return Service{}, err
	}
	for _, r := range resp.Services {
		if r.Username != "" && r.Password != "" {
			return r, nil
		}
	}
	return Service{}, fmt.Errorf("ice: no credentials for %s:%s from %s", svc.Host, svc.Port, server)
}

// queryIQ sends an IQ get with payload to server and decodes the answer's
// payload into v, checking who answered.
func queryIQ(ctx context.Context, s jingle.IQSender, server jid.JID, payload, v any) error {
	el, err := jingle.NewElement(payload)
	if err != nil {
		return err
	}
	resp, err := s.SendIQElement(ctx, el.TokenReader(), stanza.IQ{To: server, Type: stanza.GetIQ})
	if err != nil {
		return fmt.Errorf("ice: external service discovery at %s: %w", server, err)
	}
	defer resp.Close()
	d := xml.NewTokenDecoder(resp)
	tok, err := d.Token()
	if err != nil {
		return fmt.Errorf("ice: external service discovery answer: %w", err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return fmt.Errorf("ice: external service discovery answer: unexpected %T", tok)
	}
	iq, err := stanza.NewIQ(start)
	if err != nil {
		return fmt.Errorf("ice: external service discovery answer: %w", err)
	}
	if from := iq.From.String(); from != "" && !iq.From.Equal(server) {
		return fmt.Errorf("ice: external service discovery answered by %s, not %s", from, server)
	}
	if iq.Type == stanza.ErrorIQ {
		se, err := stanza.UnmarshalError(d)
		if err != nil {
			return fmt.Errorf("ice: external service discovery error from %s", server)
		}
		return fmt.Errorf("ice: external service discovery at %s: %w", server, se)
	}
	if iq.Type != stanza.ResultIQ {
		return fmt.Errorf("ice: external service discovery answer of type %q", iq.Type)
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return fmt.Errorf("ice: external service discovery result from %s without payload", server)
		}
		if err != nil {
			return fmt.Errorf("ice: external service discovery result: %w", err)
		}
		if st, ok := tok.(xml.StartElement); ok {
			if err := d.DecodeElement(v, &st); err != nil {
				return fmt.Errorf("ice: external service discovery result: %w", err)
			}
			return nil
		}
	}
}
