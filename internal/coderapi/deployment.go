package coderapi

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
)

// How a deployment's inputs and environment reach coderd. Both Coder
// stages (coder and provisioners) call the API; what they share lives here,
// below the stages, because a stage may not import another.

// KeyCAFile is the input naming the PEM bundle that signed CODER_URL's
// certificate, when it is not publicly trusted.
const KeyCAFile = "CODER_CA_FILE"

// EnvSessionToken is the process environment variable holding a Coder
// owner's session token. It is read, never stored.
const EnvSessionToken = "CODER_SESSION_TOKEN"

// SessionToken reads the owner's token from the process environment.
func SessionToken(lookup func(string) (string, bool)) string {
	v, _ := lookup(EnvSessionToken)
	return strings.TrimSpace(v)
}

// ForInputs is a client for CODER_URL that trusts CODER_CA_FILE when it is
// set; token may be empty for the unauthenticated endpoints.
func ForInputs(in *config.Inputs, token string) (*Client, error) {
	return New(in.CoderURL(), Options{Token: token, CAFile: in.Get(KeyCAFile)})
}

// ValidateCAFile checks that CODER_CA_FILE, when set, holds a PEM
// certificate.
func ValidateCAFile(in *config.Inputs) error {
	path := in.Get(KeyCAFile)
	if path == "" {
		return nil
	}
	source := in.Source(KeyCAFile)
	pem, err := os.ReadFile(path)
	if err != nil {
		return fault.Input(source, KeyCAFile, "give the path of the PEM CA bundle that signed CODER_URL's certificate", "cannot read %s: %v", path, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fault.Input(source, KeyCAFile, "give a PEM file (-----BEGIN CERTIFICATE-----)", "%s holds no PEM certificate", path)
	}
	return nil
}

// IsDNSNotFound reports whether err is a DNS lookup that found no such
// host: the records for CODER_URL do not exist (yet).
func IsDNSNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// UnreachableHint says what to do when CODER_URL does not answer.
// nlbHostname is the load balancer the coder stage recorded, or "".
func UnreachableHint(in *config.Inputs, nlbHostname string, err error) string {
	switch {
	case IsDNSNotFound(err) && in.HostedZoneID() == "":
		if nlbHostname == "" {
			nlbHostname = "the NLB"
		}
		return fmt.Sprintf("create the DNS records printed by 'coderctl stage coder apply' (CODER_DOMAIN and *.CODER_DOMAIN to %s), then retry", nlbHostname)
	case IsDNSNotFound(err):
		return "the alias records in HOSTED_ZONE_ID are new: DNS may take a few minutes; check the zone is the one the domain's registrar delegates to"
	default:
		return fmt.Sprintf("check that the NLB's targets are healthy (coderd pods Ready) and that %s is reachable from here", in.CoderURL())
	}
}
