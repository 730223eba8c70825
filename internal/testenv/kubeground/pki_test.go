package kubeground

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"
)

func TestWritePKI(t *testing.T) {
	dir := t.TempDir()
	p, err := writePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.caPEM) {
		t.Fatal("CA PEM does not parse")
	}
	serving := readCert(t, p.servingCert)
	// Clients reach the apiserver by loopback IP, by name from kubeconfigs,
	// and in-cluster through the kubernetes Service.
	for _, name := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc", kubernetesServiceIP} {
		if _, err := serving.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("serving certificate does not verify for %s: %v", name, err)
		}
	}
	if _, err := readCert(t, p.caCert).Verify(x509.VerifyOptions{Roots: roots}); err != nil {
		t.Errorf("ca.crt is not the CA in caPEM: %v", err)
	}

	pub := readPEM(t, p.saPublic, "PUBLIC KEY")
	key, err := x509.ParsePKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.ParseECPrivateKey(readPEM(t, p.saPrivate, "EC PRIVATE KEY"))
	if err != nil {
		t.Fatal(err)
	}
	if !priv.PublicKey.Equal(key.(*ecdsa.PublicKey)) {
		t.Error("sa.pub is not the public half of sa.key")
	}
	for _, path := range []string{p.caKey, p.servingKey, p.saPrivate} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", path, st.Mode().Perm())
		}
	}
	if len(p.adminToken) != 64 {
		t.Errorf("admin token %q has %d characters, want 64 hex", p.adminToken, len(p.adminToken))
	}
}

func TestWriteTokenFile(t *testing.T) {
	path := t.TempDir() + "/tokens.csv"
	if err := writeTokenFile(path, "abc"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// token,user,uid,"groups": the group makes the token cluster-admin.
	if got, want := strings.TrimSpace(string(data)), `abc,kubeground-admin,kubeground-admin,"system:masters"`; got != want {
		t.Errorf("token file = %q, want %q", got, want)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(readPEM(t, path, "CERTIFICATE"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readPEM(t *testing.T, path, blockType string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != blockType {
		t.Fatalf("%s: want one %s PEM block", path, blockType)
	}
	return block.Bytes
}
