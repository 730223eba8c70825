package acm

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
)

// record is one DNS record ACM needs to validate the certificate. The
// domain and its wildcard share one record.
type record struct{ Name, Type, Value string }

const recordTTL = 300

// recordsTimeout bounds the wait for ACM to publish the records, which it
// does seconds after the request.
const recordsTimeout = 5 * time.Minute

// validationRecords lists the certificate's DNS validation records, once.
func validationRecords(c *cert) []record {
	var out []record
	for _, dv := range c.DomainValidationOptions {
		rr := dv.ResourceRecord
		if rr == nil {
			continue
		}
		rec := record{Name: aws.ToString(rr.Name), Type: string(rr.Type), Value: aws.ToString(rr.Value)}
		if !slices.Contains(out, rec) {
			out = append(out, rec)
		}
	}
	return out
}

// recordsReady reports whether ACM has published a record for every name.
func recordsReady(c *cert) bool {
	if len(c.DomainValidationOptions) == 0 {
		return false
	}
	for _, dv := range c.DomainValidationOptions {
		if dv.ResourceRecord == nil {
			return false
		}
	}
	return true
}

// waitForRecords re-reads the certificate until ACM has published its
// validation records.
func (s *stage) waitForRecords(ctx context.Context, r engine.Reporter, certARN string) (*cert, error) {
	var c *cert
	err := awsx.Poll(ctx, r, "ACM to publish the validation records of "+certARN, s.d.Opts.Wait, recordsTimeout,
		func(ctx context.Context) (bool, string, error) {
			var err error
			if c, err = s.describe(ctx, certARN); err != nil {
				return false, "", err
			}
			if c == nil {
				return false, "", fmt.Errorf("certificate %s disappeared", certARN)
			}
			if recordsReady(c) {
				return true, "published", nil
			}
			return false, "not yet published", nil
		})
	return c, err
}

// zoneName checks that zoneID is a public zone that can hold records for
// domain (the domain's own zone or a parent) and returns its name. Every
// refusal is bad input naming HOSTED_ZONE_ID.
func (s *stage) zoneName(ctx context.Context, zoneID, domain string) (string, error) {
	src := s.d.Inputs.Source(config.KeyHostedZoneID)
	out, err := s.d.AWS.Route53.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(zoneID)})
	if awsx.IsNotFound(err) {
		return "", fault.Input(src, config.KeyHostedZoneID, "copy the ID from `aws route53 list-hosted-zones`, or leave it unset to create the records yourself",
			"hosted zone %s does not exist", zoneID)
	}
	if err != nil {
		return "", awsx.Describe("read hosted zone "+zoneID, err)
	}
	name := strings.TrimSuffix(strings.ToLower(aws.ToString(out.HostedZone.Name)), ".")
	if domain != name && !strings.HasSuffix(domain, "."+name) {
		return "", fault.Input(src, config.KeyHostedZoneID, "set HOSTED_ZONE_ID to the zone of "+domain+", or leave it unset to create the records yourself",
			"zone %s is %s, which cannot hold records for %s", zoneID, name, domain)
	}
	if out.HostedZone.Config != nil && out.HostedZone.Config.PrivateZone {
		return "", fault.Input(src, config.KeyHostedZoneID, "use the public zone of "+domain,
			"zone %s (%s) is private; ACM validates through public DNS", zoneID, name)
	}
	return name, nil
}

func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// existing returns the zone's record set for rec's name and type, if it
// holds rec's value.
func (s *stage) existing(ctx context.Context, zoneID string, rec record) (*r53types.ResourceRecordSet, error) {
	out, err := s.d.AWS.Route53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(zoneID), StartRecordName: aws.String(rec.Name), StartRecordType: r53types.RRType(rec.Type), MaxItems: aws.Int32(1),
	})
	if err != nil {
		return nil, awsx.Describe("list records of zone "+zoneID, err)
	}
	for i := range out.ResourceRecordSets {
		set := &out.ResourceRecordSets[i]
		if !sameName(aws.ToString(set.Name), rec.Name) || string(set.Type) != rec.Type {
			continue
		}
		for _, rr := range set.ResourceRecords {
			if sameName(aws.ToString(rr.Value), rec.Value) {
				return set, nil
			}
		}
	}
	return nil, nil
}

// missing returns the records the zone does not hold yet.
func (s *stage) missing(ctx context.Context, zoneID string, recs []record) ([]record, error) {
	var out []record
	for _, rec := range recs {
		set, err := s.existing(ctx, zoneID, rec)
		if err != nil {
			return nil, err
		}
		if set == nil {
			out = append(out, rec)
		}
	}
	return out, nil
}

func (s *stage) planRecords(ctx context.Context) ([]engine.Action, error) {
	zone := s.d.Inputs.HostedZoneID()
	c, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case c == nil && zone != "":
		return []engine.Action{{Kind: engine.Create, Resource: "validation CNAME in zone " + zone, Reason: "once the certificate is requested"}}, nil
	case c == nil:
		return []engine.Action{{Kind: engine.Nothing, Resource: "validation CNAME", Reason: "no HOSTED_ZONE_ID: printed for you to create once the certificate is requested"}}, nil
	case !c.owned:
		return []engine.Action{{Kind: engine.Nothing, Resource: "validation CNAME", Reason: "certificate given as " + names.KeyCertARN}}, nil
	case zone == "" && c.Status == acmtypes.CertificateStatusIssued:
		return []engine.Action{{Kind: engine.Nothing, Resource: "validation CNAME", Reason: "certificate already issued"}}, nil
	case zone == "":
		return []engine.Action{{Kind: engine.Nothing, Resource: "validation CNAME", Reason: "no HOSTED_ZONE_ID: printed for you to create"}}, nil
	case !recordsReady(c):
		return []engine.Action{{Kind: engine.Create, Resource: "validation CNAME in zone " + zone, Reason: "once ACM publishes it"}}, nil
	}
	miss, err := s.missing(ctx, zone, validationRecords(c))
	if err != nil {
		return nil, err
	}
	if len(miss) == 0 {
		return []engine.Action{{Kind: engine.Nothing, Resource: "validation CNAME in zone " + zone, Reason: "present"}}, nil
	}
	acts := make([]engine.Action, len(miss))
	for i, rec := range miss {
		acts[i] = engine.Action{Kind: engine.Create, Resource: rec.Name + " " + rec.Type + " in zone " + zone, Reason: "ACM validates " + s.domain() + " through it"}
	}
	return acts, nil
}

func (s *stage) applyRecords(ctx context.Context, r engine.Reporter) error {
	c, err := s.recordedCert(ctx)
	if err != nil {
		return err
	}
	certARN := c.arn()
	zone := s.d.Inputs.HostedZoneID()
	switch {
	case !c.owned:
		return nil // the user's certificate, validated by them
	case zone == "" && c.Status == acmtypes.CertificateStatusIssued:
		return nil
	}
	if !recordsReady(c) {
		if c, err = s.waitForRecords(ctx, r, certARN); err != nil {
			return err
		}
	}
	recs := validationRecords(c)
	if zone == "" {
		s.printRecords(r, certARN, recs)
		return nil
	}
	return s.upsertRecords(ctx, r, zone, recs)
}

// printRecords tells the user exactly which records to create.
func (s *stage) printRecords(r engine.Reporter, certARN string, recs []record) {
	lines := make([]string, len(recs))
	data := make([]any, len(recs))
	for i, rec := range recs {
		lines[i] = fmt.Sprintf("%s %s %s", rec.Name, rec.Type, rec.Value)
		data[i] = map[string]any{"name": rec.Name, "type": rec.Type, "value": rec.Value}
	}
	r.Notice(fmt.Sprintf("create the DNS record(s) so ACM can validate the certificate for %s and *.%s: %s",
		s.domain(), s.domain(), strings.Join(lines, "; ")),
		map[string]any{"records": data, "certificate_arn": certARN})
}

func (s *stage) upsertRecords(ctx context.Context, r engine.Reporter, zone string, recs []record) error {
	if _, err := s.zoneName(ctx, zone, s.domain()); err != nil {
		return err
	}
	miss, err := s.missing(ctx, zone, recs)
	if err != nil || len(miss) == 0 {
		return err
	}
	changes := make([]r53types.Change, len(miss))
	for i, rec := range miss {
		changes[i] = r53types.Change{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String(rec.Name), Type: r53types.RRType(rec.Type), TTL: aws.Int64(recordTTL),
			ResourceRecords: []r53types.ResourceRecord{{Value: aws.String(rec.Value)}},
		}}
	}
	r.Progress(fmt.Sprintf("creating %d validation record(s) in zone %s", len(miss), zone))
	out, err := s.d.AWS.Route53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zone),
		ChangeBatch:  &r53types.ChangeBatch{Comment: aws.String("coderctl: ACM validation for " + s.domain()), Changes: changes},
	})
	if err != nil {
		return awsx.Describe("create validation records in zone "+zone, err)
	}
	return awsx.WaitInSync(ctx, s.d.AWS.Route53, r, s.d.Opts.Wait, out.ChangeInfo)
}

// destroyRecords deletes the validation records coderctl created, only
// when it created them (HOSTED_ZONE_ID), only for its own certificate, and
// not while the certificate is in use or another certificate for the same
// domain relies on the same record (ACM reuses one record per domain).
func (s *stage) destroyRecords(ctx context.Context, r engine.Reporter) error {
	zone := s.d.Inputs.HostedZoneID()
	if zone == "" {
		return nil
	}
	c, err := s.current(ctx)
	if err != nil || c == nil || !c.owned {
		return err
	}
	if err := s.inUse(ctx, c); err != nil {
		return err
	}
	others, err := s.otherCertificates(ctx)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		r.Notice("validation records of "+s.domain()+" kept: certificate(s) "+strings.Join(others, ", ")+" validate through them too", nil)
		return nil
	}
	var changes []r53types.Change
	for _, rec := range validationRecords(c) {
		set, err := s.existing(ctx, zone, rec)
		if err != nil {
			return err
		}
		if set != nil {
			changes = append(changes, r53types.Change{Action: r53types.ChangeActionDelete, ResourceRecordSet: set})
		}
	}
	if len(changes) == 0 {
		return nil
	}
	r.Progress(fmt.Sprintf("deleting %d validation record(s) from zone %s", len(changes), zone))
	_, err = s.d.AWS.Route53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zone),
		ChangeBatch:  &r53types.ChangeBatch{Comment: aws.String("coderctl: destroy ACM validation for " + s.domain()), Changes: changes},
	})
	if err != nil && awsx.ErrorCode(err) != "InvalidChangeBatch" { // already gone
		return awsx.Describe("delete validation records from zone "+zone, err)
	}
	return nil
}

// otherCertificates lists the certificates for the domain that are not
// this deployment's.
func (s *stage) otherCertificates(ctx context.Context) ([]string, error) {
	all, err := s.forDomain(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range all {
		if !c.owned {
			out = append(out, c.arn())
		}
	}
	return out, nil
}
