package eks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logstypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
)

// The control-plane log group and its retention
// (cloudWatch.clusterLogging.logRetentionInDays). EKS sends the logs to
// /aws/eks/<cluster>/cluster and makes the group itself, without a
// retention (logs are kept forever). eksctl calls PutRetentionPolicy on it
// after enabling logging; coderctl does the same, and makes the group
// first when EKS has not yet (as terraform-aws-eks does), so that the
// retention holds from the first log line. Such a group carries the
// deployment's tags and goes with the cluster on destroy; a group EKS made
// is left, as eksctl leaves it.

func (s *stage) logGroupName() string { return "/aws/eks/" + s.clusterName() + "/cluster" }

func (s *stage) logs() *cloudwatchlogs.Client { return cloudwatchlogs.NewFromConfig(s.d.AWS.Config) }

// describeLogGroup returns the cluster's log group, nil when it does not
// exist.
func (s *stage) describeLogGroup(ctx context.Context) (*logstypes.LogGroup, error) {
	name := s.logGroupName()
	pager := cloudwatchlogs.NewDescribeLogGroupsPaginator(s.logs(), &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(name)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, awsx.Describe("CloudWatch Logs DescribeLogGroups "+name, err)
		}
		for i := range page.LogGroups {
			if aws.ToString(page.LogGroups[i].LogGroupName) == name {
				return &page.LogGroups[i], nil
			}
		}
	}
	return nil, nil
}

func retentionWords(days *int32) string {
	if days == nil {
		return "kept forever"
	}
	return fmt.Sprintf("%d days", *days)
}

// planLogRetention is the log group's action when the file sets a
// retention (none otherwise: coderctl then has no opinion on it).
func (s *stage) planLogRetention(ctx context.Context) []engine.Action {
	w := s.want()
	if w.retention == 0 || len(w.logTypes) == 0 {
		return nil
	}
	res := "log-group/" + strings.TrimPrefix(s.logGroupName(), "/")
	g, err := s.describeLogGroup(ctx)
	switch {
	case err != nil:
		return []engine.Action{{Kind: engine.Update, Resource: res, Reason: fmt.Sprintf("cannot read it (%v): apply sets a retention of %d days", err, w.retention)}}
	case g == nil:
		return []engine.Action{{Kind: engine.Create, Resource: res, Reason: fmt.Sprintf("missing: create it for the control-plane logs with a retention of %d days", w.retention)}}
	case aws.ToInt32(g.RetentionInDays) != w.retention:
		return []engine.Action{{Kind: engine.Update, Resource: res, Reason: fmt.Sprintf("retention %s, want %d days", retentionWords(g.RetentionInDays), w.retention)}}
	}
	return []engine.Action{{Kind: engine.Nothing, Resource: res, Reason: fmt.Sprintf("retention %d days as configured", w.retention)}}
}

// ensureLogRetention makes the group if EKS has not and sets its retention.
func (s *stage) ensureLogRetention(ctx context.Context, r engine.Reporter) error {
	w := s.want()
	if w.retention == 0 || len(w.logTypes) == 0 {
		return nil
	}
	name := s.logGroupName()
	g, err := s.describeLogGroup(ctx)
	if err != nil {
		return err
	}
	if g == nil {
		r.Progress("creating log group " + name)
		_, err := s.logs().CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(name), Tags: s.tags(name)})
		var exists *logstypes.ResourceAlreadyExistsException
		if err != nil && !errors.As(err, &exists) {
			return awsx.Describe("CloudWatch Logs CreateLogGroup "+name, err)
		}
	} else if aws.ToInt32(g.RetentionInDays) == w.retention {
		return nil
	}
	r.Progress(fmt.Sprintf("setting the retention of %s to %d days", name, w.retention))
	_, err = s.logs().PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(name), RetentionInDays: aws.Int32(w.retention)})
	return awsx.Describe("CloudWatch Logs PutRetentionPolicy "+name, err)
}

// checkLogRetention is the log-retention checkpoint.
func (s *stage) checkLogRetention(ctx context.Context) (engine.Check, bool) {
	const name = "log-retention"
	w := s.want()
	if w.retention == 0 || len(w.logTypes) == 0 {
		return engine.Check{}, false
	}
	g, err := s.describeLogGroup(ctx)
	switch {
	case err != nil:
		return engine.Failf(name, "", "%v", err), true
	case g == nil:
		return engine.Failf(name, applyHint, "log group %s not found", s.logGroupName()), true
	case aws.ToInt32(g.RetentionInDays) != w.retention:
		return engine.Failf(name, applyHint+" to converge it", "%s: retention %s, want %d days", s.logGroupName(), retentionWords(g.RetentionInDays), w.retention), true
	}
	return engine.Passf(name, "%s keeps %d days", s.logGroupName(), w.retention), true
}

// deleteLogGroup removes the log group when coderctl made it (tagged for
// this deployment); one EKS made keeps the cluster's audit trail.
func (s *stage) deleteLogGroup(ctx context.Context, r engine.Reporter) error {
	g, err := s.describeLogGroup(ctx)
	if err != nil || g == nil {
		return err
	}
	tags, err := s.logs().ListTagsForResource(ctx, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String(strings.TrimSuffix(aws.ToString(g.Arn), ":*"))})
	if err != nil {
		return awsx.Describe("CloudWatch Logs ListTagsForResource "+s.logGroupName(), err)
	}
	if !s.ownedBy(tags.Tags) {
		return nil
	}
	r.Progress("deleting log group " + s.logGroupName())
	_, err = s.logs().DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(s.logGroupName())})
	if awsx.IsNotFound(err) {
		return nil
	}
	return awsx.Describe("CloudWatch Logs DeleteLogGroup "+s.logGroupName(), err)
}
