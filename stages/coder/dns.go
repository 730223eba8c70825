package coder

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// recordNames are the names users reach Coder and its workspace apps at.
func (s *stage) recordNames() []string {
	d := s.d.Inputs.Domain()
	return []string{d, "*." + d}
}

// aliasTarget is where the records point: the NLB, in its canonical zone.
type aliasTarget struct{ dnsName, zoneID string }

// currentHostname is the NLB's DNS name from the Service, else from state.
func (s *stage) currentHostname(ctx context.Context) (string, error) {
	kc, _, err := s.d.KubeClient(ctx)
	if err == nil {
		svc, err := kc.CoreV1().Services(names.CoderNamespace).Get(ctx, ServiceName, metav1.GetOptions{})
		switch {
		case err == nil && Hostname(svc) != "":
			return Hostname(svc), nil
		case err != nil && !apierrors.IsNotFound(err):
			return "", err
		}
	}
	if h := s.d.State.Get(names.KeyNLBHostname); h != "" {
		return h, nil
	}
	return "", fmt.Errorf("%s has no load balancer yet: run 'coderctl stage %s apply'", ServiceName, Name)
}

// target finds the NLB's canonical hosted zone, which alias records need.
func (s *stage) target(ctx context.Context) (aliasTarget, error) {
	host, err := s.currentHostname(ctx)
	if err != nil {
		return aliasTarget{}, err
	}
	lb, err := LoadBalancerByHostname(ctx, s.d.AWS.ELB, host)
	if err != nil {
		return aliasTarget{}, err
	}
	if lb == nil {
		return aliasTarget{}, fmt.Errorf("no load balancer named %s in %s yet", host, s.d.Region())
	}
	zone := aws.ToString(lb.CanonicalHostedZoneId)
	if zone == "" {
		return aliasTarget{}, fmt.Errorf("load balancer %s has no canonical hosted zone ID", lbLabel(lb))
	}
	return aliasTarget{dnsName: aws.ToString(lb.DNSName), zoneID: zone}, nil
}

// existingRecord returns the A record set named name, or nil.
func (s *stage) existingRecord(ctx context.Context, zone, name string) (*r53types.ResourceRecordSet, error) {
	out, err := s.d.AWS.Route53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(zone), StartRecordName: aws.String(name), StartRecordType: r53types.RRTypeA,
		MaxItems: aws.Int32(1),
	})
	if err != nil {
		return nil, awsx.Describe("list records of hosted zone "+zone, err)
	}
	for i, rr := range out.ResourceRecordSets {
		if sameRecordName(aws.ToString(rr.Name), name) && rr.Type == r53types.RRTypeA {
			return &out.ResourceRecordSets[i], nil
		}
	}
	return nil, nil
}

// sameRecordName compares record names as Route53 returns them: with a
// trailing dot and "*" escaped as \052.
func sameRecordName(have, want string) bool {
	h := strings.ReplaceAll(strings.TrimSuffix(strings.ToLower(have), "."), `\052`, "*")
	return h == strings.TrimSuffix(strings.ToLower(want), ".")
}

func pointsAt(rr *r53types.ResourceRecordSet, t aliasTarget) bool {
	return rr != nil && rr.AliasTarget != nil &&
		normalizeDNS(aws.ToString(rr.AliasTarget.DNSName)) == normalizeDNS(t.dnsName) &&
		aws.ToString(rr.AliasTarget.HostedZoneId) == t.zoneID
}

// wantedChanges are the UPSERTs for records that do not yet point at t.
func (s *stage) wantedChanges(ctx context.Context, zone string, t aliasTarget) ([]r53types.Change, error) {
	var changes []r53types.Change
	for _, name := range s.recordNames() {
		rr, err := s.existingRecord(ctx, zone, name)
		if err != nil {
			return nil, err
		}
		if pointsAt(rr, t) {
			continue
		}
		changes = append(changes, r53types.Change{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String(name), Type: r53types.RRTypeA,
			AliasTarget: &r53types.AliasTarget{DNSName: aws.String(t.dnsName), HostedZoneId: aws.String(t.zoneID), EvaluateTargetHealth: true},
		}})
	}
	return changes, nil
}

func (s *stage) planDNS(ctx context.Context) ([]engine.Action, error) {
	zone := s.d.Inputs.HostedZoneID()
	resource := "DNS " + strings.Join(s.recordNames(), ", ")
	if zone == "" {
		return []engine.Action{{Kind: engine.Nothing, Resource: resource, Reason: "no HOSTED_ZONE_ID: the records to create by hand are printed"}}, nil
	}
	t, err := s.target(ctx)
	if err != nil {
		return []engine.Action{{Kind: engine.Create, Resource: resource, Reason: "alias A records to the NLB once it exists"}}, nil
	}
	changes, err := s.wantedChanges(ctx, zone, t)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return []engine.Action{{Kind: engine.Nothing, Resource: resource, Reason: "alias records point at " + t.dnsName}}, nil
	}
	return []engine.Action{{Kind: engine.Update, Resource: resource, Reason: fmt.Sprintf("upsert %d alias record(s) to %s", len(changes), t.dnsName)}}, nil
}

func (s *stage) applyDNS(ctx context.Context, r engine.Reporter) error {
	zone := s.d.Inputs.HostedZoneID()
	if zone == "" {
		return s.printRecords(ctx, r)
	}
	t, err := s.target(ctx)
	if err != nil {
		return err
	}
	changes, err := s.wantedChanges(ctx, zone, t)
	if err != nil || len(changes) == 0 {
		return err
	}
	r.Progress(fmt.Sprintf("upserting %d alias record(s) to %s in %s", len(changes), t.dnsName, zone))
	out, err := s.d.AWS.Route53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zone),
		ChangeBatch:  &r53types.ChangeBatch{Comment: aws.String("coderctl " + s.d.Deployment() + ": Coder URLs"), Changes: changes},
	})
	if err != nil {
		return awsx.Describe("upsert alias records in hosted zone "+zone, err)
	}
	return awsx.WaitInSync(ctx, s.d.AWS.Route53, r, s.d.Opts.Wait, out.ChangeInfo)
}

// printRecords tells the user what to create in their own DNS.
func (s *stage) printRecords(ctx context.Context, r engine.Reporter) error {
	host, err := s.currentHostname(ctx)
	if err != nil {
		return err
	}
	names := s.recordNames()
	r.Notice(fmt.Sprintf("no HOSTED_ZONE_ID: create these DNS records yourself: %s CNAME %s and %s CNAME %s (or Route53 alias A records to the NLB)",
		names[0], host, names[1], host),
		map[string]any{"records": []map[string]string{
			{"name": names[0], "type": "CNAME", "value": host},
			{"name": names[1], "type": "CNAME", "value": host},
		}})
	return nil
}

// destroyDNS deletes the alias records that point at this deployment's
// NLB; records pointing elsewhere are the user's and stay.
func (s *stage) destroyDNS(ctx context.Context, r engine.Reporter) error {
	zone := s.d.Inputs.HostedZoneID()
	if zone == "" {
		return nil
	}
	host, err := s.currentHostname(ctx)
	if err != nil {
		r.Progress("no load balancer known: no alias records to delete")
		return nil
	}
	var changes []r53types.Change
	for _, name := range s.recordNames() {
		rr, err := s.existingRecord(ctx, zone, name)
		if err != nil {
			return err
		}
		if rr != nil && rr.AliasTarget != nil && normalizeDNS(aws.ToString(rr.AliasTarget.DNSName)) == normalizeDNS(host) {
			changes = append(changes, r53types.Change{Action: r53types.ChangeActionDelete, ResourceRecordSet: rr})
		}
	}
	if len(changes) == 0 {
		return nil
	}
	r.Progress(fmt.Sprintf("deleting %d alias record(s) in %s", len(changes), zone))
	_, err = s.d.AWS.Route53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zone), ChangeBatch: &r53types.ChangeBatch{Changes: changes},
	})
	if err != nil && !awsx.IsNotFound(err) && awsx.ErrorCode(err) != "InvalidChangeBatch" {
		return awsx.Describe("delete alias records in hosted zone "+zone, err)
	}
	return nil
}

// serviceOf returns the public Service, or nil when it does not exist.
func serviceOf(ctx context.Context, s *stage) (*corev1.Service, error) {
	kc, _, err := s.d.KubeClient(ctx)
	if err != nil {
		return nil, err
	}
	svc, err := kc.CoreV1().Services(names.CoderNamespace).Get(ctx, ServiceName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return svc, err
}
