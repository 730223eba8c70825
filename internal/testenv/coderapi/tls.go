package coderapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certValidity covers any test run and a long `make demo KEEP=1` session.
const certValidity = 7 * 24 * time.Hour

// serverTLS is the test double's private CA and the serving certificate it
// signed. Only the CA certificate ever leaves memory (as CAFile).
type serverTLS struct {
	caPEM  []byte
	config *tls.Config
}

// newServerTLS makes a fresh CA and a server certificate for 127.0.0.1, ::1,
// localhost and dnsNames. A fresh CA per server keeps one test's trust from
// leaking into another's.
func newServerTLS(dnsNames []string) (*serverTLS, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("coderapi: CA key: %w", err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{CommonName: "coderapi test double CA", Organization: []string{"coderctl testenv"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("coderapi: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("coderapi: server key: %w", err)
	}
	leafTemplate := &x509.Certificate{
		SerialNumber: serialNumber(),
		Subject:      pkix.Name{CommonName: "coderapi test double"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     append([]string{"localhost"}, dnsNames...),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTemplate, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("coderapi: server certificate: %w", err)
	}
	return &serverTLS{
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		config: &tls.Config{
			MinVersion: tls.VersionTLS12,
			Certificates: []tls.Certificate{{
				Certificate: [][]byte{leafDER, caDER},
				PrivateKey:  leafKey,
			}},
		},
	}, nil
}

// writeCAFile stores the CA certificate where clients (and SSL_CERT_FILE)
// can read it.
func writeCAFile(dir string, caPEM []byte) (string, error) {
	path := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(path, caPEM, 0o644); err != nil {
		return "", fmt.Errorf("coderapi: write CA file: %w", err)
	}
	return path, nil
}

func serialNumber() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on Linux; a constant serial is still valid.
		return big.NewInt(1)
	}
	return n
}
