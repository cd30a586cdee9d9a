package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// TestWrite: the server certificate verifies against the CA for the
// domain, the extra names and the loopback addresses, and its key is
// private to the user.
func TestWrite(t *testing.T) {
	f, err := Write(t.TempDir()+"/certs", "localhost", []string{"proxy.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(f.CAPEM) {
		t.Fatal("no CA in CAPEM")
	}
	for _, name := range []string{"localhost", "proxy.localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.org", Roots: roots}); err == nil {
		t.Error("the certificate verifies for example.org")
	}
	if st, err := os.Stat(f.KeyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v, %v", st.Mode(), err)
	}
	if ca, err := os.ReadFile(f.CAFile); err != nil || string(ca) != string(f.CAPEM) {
		t.Errorf("CAFile differs from CAPEM (%v)", err)
	}
}
