package awsx

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/coderctl/coderctl/internal/engine"
)

// ChangeInSync is the wait for a Route53 change to propagate: INSYNC on
// every Route53 server within a minute, usually seconds.
var ChangeInSync = WaitPolicy{MinDelay: 5 * time.Second, MaxDelay: 30 * time.Second, Timeout: 10 * time.Minute}

// WaitInSync waits with the SDK's waiter, reporting each poll, until
// Route53 serves a change from all its servers; ChangeInSync under the
// run's policy p bounds it. Even a change answered INSYNC is read once, so
// the run shows its status.
func WaitInSync(ctx context.Context, c route53.GetChangeAPIClient, r engine.Reporter, p WaitPolicy, info *r53types.ChangeInfo) error {
	if info == nil {
		return nil
	}
	id := aws.ToString(info.Id)
	wait := p.For(ChangeInSync)
	w := route53.NewResourceRecordSetsChangedWaiter(c, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
		o.MinDelay, o.MaxDelay = wait.MinDelay, wait.MaxDelay
		o.Retryable = Watch(r, "Route53 change "+id, changeStatus, o.Retryable)
	})
	if err := w.Wait(ctx, &route53.GetChangeInput{Id: info.Id}, wait.Timeout); err != nil {
		return fmt.Errorf("route53 change %s did not reach INSYNC: %w", id, err)
	}
	return nil
}

func changeStatus(out *route53.GetChangeOutput) string {
	if out.ChangeInfo == nil {
		return "unknown"
	}
	return string(out.ChangeInfo.Status)
}
