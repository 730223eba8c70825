package network

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestCarveSubnets(t *testing.T) {
	tests := []struct {
		name        string
		vpc         string
		zones       int
		wantPrivate []netip.Prefix
		wantPublic  []netip.Prefix
		wantErr     string
	}{
		{name: "shipped /16 in three zones", vpc: "10.0.0.0/16", zones: 3,
			wantPrivate: prefixes("10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18"),
			wantPublic:  prefixes("10.0.192.0/20", "10.0.208.0/20", "10.0.224.0/20")},
		{name: "smallest accepted VPC", vpc: "192.168.10.0/24", zones: 3,
			wantPrivate: prefixes("192.168.10.0/26", "192.168.10.64/26", "192.168.10.128/26"),
			wantPublic:  prefixes("192.168.10.192/28", "192.168.10.208/28", "192.168.10.224/28")},
		{name: "two zones keep the three-zone blocks", vpc: "172.16.0.0/20", zones: 2,
			wantPrivate: prefixes("172.16.0.0/22", "172.16.4.0/22"),
			wantPublic:  prefixes("172.16.8.0/24", "172.16.9.0/24")},
		{name: "four zones need eighths", vpc: "10.0.0.0/16", zones: 4,
			wantPrivate: prefixes("10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19", "10.0.96.0/19"),
			wantPublic:  prefixes("10.0.128.0/22", "10.0.132.0/22", "10.0.136.0/22", "10.0.140.0/22")},
		{name: "offset VPC block", vpc: "10.42.128.0/17", zones: 3,
			wantPrivate: prefixes("10.42.128.0/19", "10.42.160.0/19", "10.42.192.0/19"),
			wantPublic:  prefixes("10.42.224.0/21", "10.42.232.0/21", "10.42.240.0/21")},
		{name: "a /24 cannot hold four zones", vpc: "10.0.0.0/24", zones: 4, wantErr: "too small"},
		{name: "a /26 cannot hold three zones", vpc: "10.0.0.0/26", zones: 3, wantErr: "public subnets would be /30"},
		{name: "larger than a VPC may be", vpc: "10.0.0.0/8", zones: 3, wantErr: "larger than AWS allows"},
		{name: "host bits set", vpc: "10.0.0.1/16", zones: 3, wantErr: "did you mean 10.0.0.0/16"},
		{name: "IPv6", vpc: "2001:db8::/56", zones: 3, wantErr: "not an IPv4"},
		{name: "no zones", vpc: "10.0.0.0/16", zones: 0, wantErr: "no availability zones"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := carveSubnets(netip.MustParsePrefix(tt.vpc), tt.zones)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("carveSubnets(%s, %d) error = %v, want one containing %q", tt.vpc, tt.zones, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("carveSubnets(%s, %d): %v", tt.vpc, tt.zones, err)
			}
			if !slices.Equal(got.Private, tt.wantPrivate) || !slices.Equal(got.Public, tt.wantPublic) {
				t.Errorf("carveSubnets(%s, %d) = private %v public %v, want private %v public %v",
					tt.vpc, tt.zones, got.Private, got.Public, tt.wantPrivate, tt.wantPublic)
			}
		})
	}
}

// TestCarveSubnetsInvariants sweeps every VPC size AWS allows and zone
// counts up to seven: whenever carving succeeds, the subnets are inside the
// VPC, do not overlap, are at least /28, and private ones are larger.
func TestCarveSubnetsInvariants(t *testing.T) {
	for bits := 16; bits <= 28; bits++ {
		vpc := netip.PrefixFrom(netip.MustParseAddr("10.128.0.0"), bits)
		for zones := 1; zones <= 7; zones++ {
			got, err := carveSubnets(vpc, zones)
			if err != nil {
				if !strings.Contains(err.Error(), "too small") {
					t.Errorf("carveSubnets(%s, %d): unexpected error %v", vpc, zones, err)
				}
				continue
			}
			all := append(slices.Clone(got.Private), got.Public...)
			if len(got.Private) != zones || len(got.Public) != zones {
				t.Fatalf("carveSubnets(%s, %d) gave %d private and %d public subnets", vpc, zones, len(got.Private), len(got.Public))
			}
			if a, b, ok := firstOverlap(all); ok {
				t.Errorf("carveSubnets(%s, %d): %s overlaps %s", vpc, zones, a, b)
			}
			for _, p := range all {
				if !vpc.Contains(p.Addr()) || p.Bits() < vpc.Bits() || p.Bits() > smallestSubnet {
					t.Errorf("carveSubnets(%s, %d): %s is outside the VPC or smaller than /%d", vpc, zones, p, smallestSubnet)
				}
			}
			if got.Private[0].Bits() >= got.Public[0].Bits() {
				t.Errorf("carveSubnets(%s, %d): private %s is not larger than public %s", vpc, zones, got.Private[0], got.Public[0])
			}
		}
	}
	// The shipped /16 must work for the three zones the stage uses.
	if _, err := carveSubnets(netip.MustParsePrefix("10.0.0.0/16"), 3); err != nil {
		t.Fatal(err)
	}
}
