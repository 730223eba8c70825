package network

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
)

// Limits AWS puts on IPv4 blocks.
const (
	largestVPCBits = 16 // a VPC block is /16 at most
	smallestSubnet = 28 // a subnet is /28 at least (AWS keeps 5 of its 16 addresses)
	ipv4Bits       = 32
)

// subnetCIDRs is where each zone's subnets go, in zone order.
type subnetCIDRs struct {
	Private []netip.Prefix
	Public  []netip.Prefix
}

// carveSubnets derives one private and one public subnet per zone from the
// VPC block, the same way every time, so that a re-run (or another machine)
// computes the same blocks and finds what it created.
//
// The VPC is cut into 2^k equal blocks, k the smallest with room for one
// block per zone plus a spare. The first blocks go to the private subnets:
// nodes and pods live there, and the VPC CNI gives every pod a VPC address,
// so they get the space. The next block is cut again into 2^k pieces for the
// public subnets, which hold only load balancers and NAT gateways. For a /16
// and three zones: private /18s (16,379 usable addresses each), public /20s
// (4,091 each), and a /20 left free for later.
func carveSubnets(vpc netip.Prefix, zones int) (subnetCIDRs, error) {
	if err := checkVPCBlock(vpc); err != nil {
		return subnetCIDRs{}, err
	}
	if zones < 1 {
		return subnetCIDRs{}, fmt.Errorf("no availability zones to place subnets in")
	}
	k := bits.Len(uint(zones)) // smallest k with 2^k >= zones+1
	privateBits := vpc.Bits() + k
	publicBits := privateBits + k
	if publicBits > smallestSubnet {
		return subnetCIDRs{}, fmt.Errorf("%s is too small for a private and a public subnet in each of %d zones: the public subnets would be /%d, AWS needs /%d or larger",
			vpc, zones, publicBits, smallestSubnet)
	}
	var out subnetCIDRs
	for i := range zones {
		out.Private = append(out.Private, nthSubnet(vpc, privateBits, i))
	}
	publicBlock := nthSubnet(vpc, privateBits, zones)
	for i := range zones {
		out.Public = append(out.Public, nthSubnet(publicBlock, publicBits, i))
	}
	if a, b, ok := firstOverlap(append(append([]netip.Prefix{}, out.Private...), out.Public...)); ok {
		// Unreachable by construction; kept so a future change to the
		// arithmetic cannot silently produce blocks AWS would refuse.
		return subnetCIDRs{}, fmt.Errorf("derived subnets %s and %s overlap", a, b)
	}
	return out, nil
}

// checkVPCBlock accepts an IPv4 network address between /16 and /28.
func checkVPCBlock(vpc netip.Prefix) error {
	switch {
	case !vpc.IsValid() || !vpc.Addr().Is4():
		return fmt.Errorf("%s is not an IPv4 CIDR block", vpc)
	case vpc.Masked() != vpc:
		return fmt.Errorf("%s has host bits set: did you mean %s?", vpc, vpc.Masked())
	case vpc.Bits() < largestVPCBits:
		return fmt.Errorf("%s is larger than AWS allows for a VPC (/%d at most)", vpc, largestVPCBits)
	case vpc.Bits() > smallestSubnet:
		return fmt.Errorf("%s is smaller than the smallest subnet AWS allows (/%d)", vpc, smallestSubnet)
	}
	return nil
}

// nthSubnet returns the i-th block of length newBits inside parent.
func nthSubnet(parent netip.Prefix, newBits, i int) netip.Prefix {
	base := parent.Addr().As4()
	n := binary.BigEndian.Uint32(base[:]) + uint32(i)<<(ipv4Bits-newBits)
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], n)
	return netip.PrefixFrom(netip.AddrFrom4(a), newBits)
}

// firstOverlap returns the first two blocks that share an address.
func firstOverlap(blocks []netip.Prefix) (netip.Prefix, netip.Prefix, bool) {
	for i := range blocks {
		for j := i + 1; j < len(blocks); j++ {
			if blocks[i].Overlaps(blocks[j]) {
				return blocks[i], blocks[j], true
			}
		}
	}
	return netip.Prefix{}, netip.Prefix{}, false
}
