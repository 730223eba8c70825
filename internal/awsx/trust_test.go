package awsx

import (
	"net/url"
	"testing"
)

// TestTrustAllows: a trust policy as IAM returns it passes when one Allow
// statement lets the service assume the role, whatever else it holds.
func TestTrustAllows(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want bool
	}{
		{"as coderctl writes it", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, true},
		{"url encoded as IAM returns it", url.QueryEscape(`{"Statement":[{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com"]},"Action":["sts:AssumeRole"]}]}`), true},
		{"among other statements", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"},{"Effect":"Allow","Principal":{"Service":["eks.amazonaws.com","ec2.amazonaws.com"]},"Action":"sts:AssumeRole"}]}`, true},
		{"denied", `{"Statement":[{"Effect":"Deny","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, false},
		{"another service", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, false},
		{"another action", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:TagSession"}]}`, false},
		{"garbage", `%zz`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TrustAllows(tc.doc, "ec2.amazonaws.com"); got != tc.want {
				t.Errorf("TrustAllows = %v, want %v", got, tc.want)
			}
		})
	}
}
