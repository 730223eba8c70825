package acm

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

const validationRecord = "_d930b28be6c5927595552b219965053e.coder.example.com. _c9edd76ee4a0e2a74388032f3861cc50.ykybfrwcxw.acm-validations.aws."

func TestApplyWithHostedZone(t *testing.T) {
	w := newWorld(t, "example.com")
	evs := w.apply(t)
	arn := w.Deps.State.Get(names.KeyCertARN)
	if !strings.HasPrefix(arn, "arn:aws:acm:us-west-2:") {
		t.Fatalf("CERT_ARN = %q", arn)
	}
	c := w.certificate(t, arn)
	if c.Status != acmtypes.CertificateStatusIssued || aws.ToString(c.DomainName) != testDomain ||
		!slices.Contains(c.SubjectAlternativeNames, "*."+testDomain) {
		t.Errorf("certificate: %s %s %v", c.Status, aws.ToString(c.DomainName), c.SubjectAlternativeNames)
	}
	tags, err := w.Deps.AWS.ACM.ListTagsForCertificate(context.Background(), &acm.ListTagsForCertificateInput{CertificateArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 3 {
		t.Errorf("tags %v, want deployment, stage and Name", tags.Tags)
	}
	if got := w.zoneCNAMEs(t); !slices.Equal(got, []string{validationRecord}) {
		t.Errorf("zone CNAMEs %v, want the one validation record", got)
	}
	var insync bool
	for _, e := range stagetest.EventsOf(evs, engine.EventProgress) {
		insync = insync || (e.Step == StepValidationRecords && strings.Contains(e.Message, "INSYNC"))
	}
	if !insync {
		t.Errorf("no progress showing the Route53 change INSYNC:\n%s", stagetest.EventLog(evs))
	}
	if f := stagetest.Failed(New(w.Deps).Verify(context.Background())); len(f) != 0 {
		t.Errorf("verify after apply: %v", f)
	}
}

func TestReapplyMakesNoChanges(t *testing.T) {
	w := newWorld(t, "example.com")
	w.apply(t)
	arn := w.Deps.State.Get(names.KeyCertARN)
	w.Reload(t)
	w.Calls.Reset()
	w.apply(t)
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("second apply made mutating calls: %v", m)
	}
	if got := w.Deps.State.Get(names.KeyCertARN); got != arn {
		t.Errorf("CERT_ARN changed: %s -> %s", arn, got)
	}
}

func TestAdoptByTags(t *testing.T) {
	w := newWorld(t, "example.com")
	w.apply(t)
	arn := w.Deps.State.Get(names.KeyCertARN)
	// A foreign certificate for the same domain must not be adopted.
	requestForeign(t, w.Deps.AWS.ACM, testDomain, "*."+testDomain)
	if err := w.Deps.State.Unset(names.KeyCertARN); err != nil {
		t.Fatal(err)
	}
	w.Reload(t)
	w.Calls.Reset()
	w.apply(t)
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("adopting made mutating calls: %v", m)
	}
	if got := w.Deps.State.Get(names.KeyCertARN); got != arn {
		t.Errorf("adopted %s, want %s", got, arn)
	}
}

// TestAdoptGivenCertificate: a user's ISSUED certificate in CERT_ARN is used
// as is: nothing requested, no records, never deleted.
func TestAdoptGivenCertificate(t *testing.T) {
	w := newWorld(t, "example.com")
	given := requestForeign(t, w.Deps.AWS.ACM, testDomain, "*."+testDomain)
	w.setInput(t, names.KeyCertARN, given)
	w.Calls.Reset()
	w.apply(t)
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("apply with a given certificate made mutating calls: %v", m)
	}
	if f := stagetest.Failed(New(w.Deps).Verify(context.Background())); len(f) != 0 {
		t.Errorf("verify: %v", f)
	}
	if _, _, err := w.run(t, engine.ModeDestroy); err != nil {
		t.Fatal(err)
	}
	if w.certificate(t, given).Status != acmtypes.CertificateStatusIssued || w.Deps.State.Get(names.KeyCertARN) != given {
		t.Error("destroy touched the user's certificate or forgot CERT_ARN")
	}
}

func TestPlan(t *testing.T) {
	w := newWorld(t, "example.com")
	plan := func() map[string]engine.ActionKind {
		t.Helper()
		_, evs, err := w.run(t, engine.ModePlan)
		if err != nil {
			t.Fatalf("plan: %v\n%s", err, stagetest.EventLog(evs))
		}
		kinds := map[string]engine.ActionKind{}
		for _, e := range stagetest.EventsOf(evs, engine.EventPlan) {
			kinds[e.Step] = e.Action.Kind
		}
		return kinds
	}
	if got, want := plan(), map[string]engine.ActionKind{StepCertificate: engine.Create, StepValidationRecords: engine.Create, names.ACMStepIssued: engine.Nothing}; !maps.Equal(got, want) {
		t.Errorf("plan on empty: %v, want %v", got, want)
	}
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("plan made mutating calls: %v", m)
	}
	w.apply(t)
	if got, want := plan(), map[string]engine.ActionKind{StepCertificate: engine.Nothing, StepValidationRecords: engine.Nothing, names.ACMStepIssued: engine.Nothing}; !maps.Equal(got, want) {
		t.Errorf("plan after apply: %v, want %v", got, want)
	}
}

func TestVerifyDetectsProblems(t *testing.T) {
	ctx := context.Background()
	useCert := func(arn string) func(*testing.T, *world) func() {
		return func(t *testing.T, w *world) func() {
			own := w.Deps.State.Get(names.KeyCertARN)
			if err := w.Deps.State.Set(names.KeyCertARN, arn); err != nil {
				t.Fatal(err)
			}
			return func() { _ = w.Deps.State.Set(names.KeyCertARN, own) }
		}
	}
	w := newWorld(t, "example.com")
	w.apply(t)
	east := acm.NewFromConfig(w.Deps.AWS.Config, func(o *acm.Options) { o.Region = "us-east-1" })
	cases := []struct {
		name    string
		breakIt func(*testing.T, *world) (undo func())
		check   string
		status  engine.CheckStatus
	}{
		{"expiring within 30 days", func(t *testing.T, w *world) func() {
			w.Deps.Now = func() time.Time { return time.Now().Add(345 * 24 * time.Hour) } // moto issues for 365 days
			return func() { w.Deps.Now = time.Now }
		}, "expiry", engine.Fail},
		{"validation record deleted", func(t *testing.T, w *world) func() {
			_, err := w.Deps.AWS.Route53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(w.zone),
				ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{Action: r53types.ChangeActionDelete, ResourceRecordSet: &r53types.ResourceRecordSet{
					Name: aws.String("_d930b28be6c5927595552b219965053e.coder.example.com."), Type: r53types.RRTypeCname, TTL: aws.Int64(300),
					ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("_c9edd76ee4a0e2a74388032f3861cc50.ykybfrwcxw.acm-validations.aws.")}}}}}}})
			if err != nil {
				t.Fatal(err)
			}
			return func() { w.apply(t) } // apply recreates it
		}, "validation-records", engine.Warn},
		{"certificate for other names", useCert(requestForeign(t, w.Deps.AWS.ACM, "other.example.com")), "names", engine.Fail},
		{"certificate in another region", useCert(requestForeign(t, east, testDomain, "*."+testDomain)), "region", engine.Fail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			undo := tc.breakIt(t, w)
			checks := New(w.Deps).Verify(ctx)
			undo()
			if c := stagetest.ChecksByName(checks)[tc.check]; c.Status != tc.status {
				t.Fatalf("check %s = %+v, want %s (all: %+v)", tc.check, c, tc.status, checks)
			}
			bad := 0
			for _, c := range checks {
				if c.Status != engine.Pass {
					bad++
				}
			}
			if bad != 1 {
				t.Errorf("want only %s to complain: %+v", tc.check, checks)
			}
			if f := stagetest.Failed(New(w.Deps).Verify(ctx)); len(f) != 0 {
				t.Errorf("after undoing %s: %v", tc.name, f)
			}
		})
	}
}

func TestDestroy(t *testing.T) {
	w := newWorld(t, "example.com")
	w.apply(t)
	arn := w.Deps.State.Get(names.KeyCertARN)
	if _, evs, err := w.run(t, engine.ModeDestroy); err != nil {
		t.Fatalf("destroy: %v\n%s", err, stagetest.EventLog(evs))
	}
	if owned := w.ownedCertificates(t); len(owned) != 0 {
		t.Errorf("certificates left: %v", owned)
	}
	if _, err := w.Deps.AWS.ACM.DescribeCertificate(context.Background(), &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)}); !awsx.IsNotFound(err) {
		t.Errorf("certificate still there: %v", err)
	}
	if got := w.zoneCNAMEs(t); len(got) != 0 {
		t.Errorf("validation records left: %v", got)
	}
	if v := w.Deps.State.Get(names.KeyCertARN); v != "" {
		t.Errorf("CERT_ARN still in state: %s", v)
	}
	w.Calls.Reset()
	if _, _, err := w.run(t, engine.ModeDestroy); err != nil {
		t.Fatalf("second destroy: %v", err)
	}
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("second destroy made mutating calls: %v", m)
	}

	// Apply again within ACM's idempotency window: the token would name the
	// deleted certificate; a new one must be requested.
	w.apply(t)
	again := w.Deps.State.Get(names.KeyCertARN)
	if again == arn || w.certificate(t, again).Status != acmtypes.CertificateStatusIssued {
		t.Errorf("apply after destroy: CERT_ARN %s (old %s)", again, arn)
	}
}

// TestDestroyRefusesCertificateInUse attaches the certificate to a TLS
// listener (moto then lists the listener in InUseBy).
func TestDestroyRefusesCertificateInUse(t *testing.T) {
	w := newWorld(t, "example.com")
	w.apply(t)
	arn := w.Deps.State.Get(names.KeyCertARN)
	listener := attachToListener(t, w, arn)

	_, evs, err := w.run(t, engine.ModeDestroy)
	if err == nil {
		t.Fatal("destroy of a certificate in use succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "still in use by "+listener) || strings.Contains(msg, "goroutine") || strings.Count(msg, "\n") > 0 {
		t.Errorf("error should name the user in one line: %q\n%s", msg, stagetest.EventLog(evs))
	}
	if w.certificate(t, arn) == nil || len(w.zoneCNAMEs(t)) != 1 {
		t.Error("destroy removed the certificate or its validation records while in use")
	}
}

func attachToListener(t *testing.T, w *world, certARN string) string {
	t.Helper()
	ctx := context.Background()
	vpc, err := w.Deps.AWS.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	var subnets []string
	for i, az := range []string{"us-west-2a", "us-west-2b"} {
		sn, err := w.Deps.AWS.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId,
			CidrBlock: aws.String([]string{"10.9.1.0/24", "10.9.2.0/24"}[i]), AvailabilityZone: aws.String(az)})
		if err != nil {
			t.Fatal(err)
		}
		subnets = append(subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	lb, err := w.Deps.AWS.ELB.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String("coder"), Subnets: subnets,
		Type: elbtypes.LoadBalancerTypeEnumNetwork})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := w.Deps.AWS.ELB.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String("coder"), Protocol: elbtypes.ProtocolEnumTcp,
		Port: aws.Int32(80), VpcId: vpc.Vpc.VpcId})
	if err != nil {
		t.Fatal(err)
	}
	l, err := w.Deps.AWS.ELB.CreateListener(ctx, &elbv2.CreateListenerInput{LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn,
		Protocol: elbtypes.ProtocolEnumTls, Port: aws.Int32(443), Certificates: []elbtypes.Certificate{{CertificateArn: aws.String(certARN)}},
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroups[0].TargetGroupArn}}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(l.Listeners[0].ListenerArn)
}

// TestDestroyKeepsSharedRecords: ACM uses one validation record per domain,
// so another certificate for the domain keeps the records alive.
func TestDestroyKeepsSharedRecords(t *testing.T) {
	w := newWorld(t, "example.com")
	w.apply(t)
	other := requestForeign(t, w.Deps.AWS.ACM, testDomain)
	_, evs, err := w.run(t, engine.ModeDestroy)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.zoneCNAMEs(t); len(got) != 1 {
		t.Errorf("records deleted although %s needs them: %v", other, got)
	}
	var noticed bool
	for _, e := range stagetest.EventsOf(evs, engine.EventNotice) {
		noticed = noticed || strings.Contains(e.Message, other)
	}
	if !noticed {
		t.Errorf("no notice naming %s:\n%s", other, stagetest.EventLog(evs))
	}
}

// TestSlowValidation runs against a moto whose certificates stay
// PENDING_VALIDATION for a few seconds, as DNS validation does for minutes.
func TestSlowValidation(t *testing.T) {
	slow := startSlowMoto(t, 3)

	t.Run("no zone: records printed, then waited for", func(t *testing.T) {
		w := newWorld(t, "")
		slow.use(t, w)
		evs := w.apply(t)
		notices := stagetest.EventsOf(evs, engine.EventNotice)
		if len(notices) != 1 || notices[0].Step != StepValidationRecords {
			t.Fatalf("want one notice from validation-records:\n%s", stagetest.EventLog(evs))
		}
		n := notices[0]
		if !strings.Contains(n.Message, "_d930b28be6c5927595552b219965053e.coder.example.com. CNAME _c9edd76ee4a0e2a74388032f3861cc50.ykybfrwcxw.acm-validations.aws.") {
			t.Errorf("notice does not give the exact record: %q", n.Message)
		}
		recs, _ := n.Data["records"].([]any)
		if len(recs) != 1 {
			t.Fatalf("notice data: %v", n.Data)
		}
		rec := recs[0].(map[string]any)
		if rec["name"] != "_d930b28be6c5927595552b219965053e.coder.example.com." || rec["type"] != "CNAME" ||
			rec["value"] != "_c9edd76ee4a0e2a74388032f3861cc50.ykybfrwcxw.acm-validations.aws." {
			t.Errorf("record data: %v", rec)
		}
		var pending, issued bool
		for _, e := range stagetest.EventsOf(evs, engine.EventProgress) {
			if e.Step == names.ACMStepIssued {
				pending = pending || strings.Contains(e.Message, "PENDING_VALIDATION")
			}
		}
		issued = w.certificate(t, w.Deps.State.Get(names.KeyCertARN)).Status == acmtypes.CertificateStatusIssued
		if !pending || !issued {
			t.Errorf("want progress showing PENDING_VALIDATION and then ISSUED (pending seen %v, issued %v):\n%s", pending, issued, stagetest.EventLog(evs))
		}
	})

	t.Run("no-wait leaves the stage pending, a later run resumes", func(t *testing.T) {
		w := newWorld(t, "")
		slow.use(t, w)
		w.Deps.Opts.NoWait = true
		_, evs, err := w.run(t, engine.ModeApply)
		arn := w.Deps.State.Get(names.KeyCertARN)
		if arn == "" {
			t.Fatal("CERT_ARN not recorded while pending")
		}
		var st string
		for _, e := range stagetest.EventsOf(evs, engine.EventStep) {
			if e.Status == engine.StatusFailed {
				t.Fatalf("step %s failed: %s", e.Step, e.Error)
			}
			if e.Step == names.ACMStepIssued && e.Status != engine.StatusStarted {
				st = e.Status
			}
		}
		if st != engine.StatusPending {
			t.Fatalf("issued step %q, want pending\n%s", st, stagetest.EventLog(evs))
		}
		// The engine (runner.go) counts the stage's checkpoint, which a
		// pending step keeps from running, as not-run and ends the run with
		// "interrupted"; the step itself reports pending, as its contract says.
		if err != nil && !strings.Contains(err.Error(), "interrupted") {
			t.Fatalf("run error: %v", err)
		}
		time.Sleep(3500 * time.Millisecond)
		w.Calls.Reset()
		w.apply(t)
		if got := w.Deps.State.Get(names.KeyCertARN); got != arn {
			t.Errorf("resumed run changed CERT_ARN: %s -> %s", arn, got)
		}
		if m := w.Calls.Mutations(); len(m) != 0 {
			t.Errorf("resumed run made mutating calls: %v", m)
		}
	})

	t.Run("timeout says what to check", func(t *testing.T) {
		w := newWorld(t, "")
		slow.use(t, w)
		w.Deps.Opts.Wait.Timeout = 500 * time.Millisecond
		_, evs, err := w.run(t, engine.ModeApply)
		if err == nil || !regexp.MustCompile(`not validated after 500ms .*CNAME`).MatchString(err.Error()) {
			t.Errorf("want a timeout naming the CNAME records, got %v\n%s", err, stagetest.EventLog(evs))
		}
	})
}

func TestIdempotencyToken(t *testing.T) {
	a := IdempotencyToken("coder-prod", testDomain)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a) {
		t.Errorf("token %q is not 32 alphanumerics", a)
	}
	if a != IdempotencyToken("coder-prod", testDomain) {
		t.Error("token is not deterministic")
	}
	for _, other := range [][]string{{"coder-dev", testDomain}, {"coder-prod", "other.example.com"}, {"coder-prod" + testDomain}} {
		if IdempotencyToken(other...) == a {
			t.Errorf("token for %v equals the one for coder-prod/%s", other, testDomain)
		}
	}
}

func TestCovers(t *testing.T) {
	cases := []struct {
		names []string
		want  string
		ok    bool
	}{
		{[]string{"coder.example.com"}, "coder.example.com", true},
		{[]string{"Coder.Example.com"}, "coder.example.com", true},
		{[]string{"*.example.com"}, "coder.example.com", true},
		{[]string{"*.example.com"}, "a.coder.example.com", false},
		{[]string{"*.example.com"}, "*.coder.example.com", false},
		{[]string{"*.coder.example.com"}, "*.coder.example.com", true},
		{[]string{"*.coder.example.com"}, "coder.example.com", false},
		{[]string{"example.com"}, "coder.example.com", false},
	}
	for _, tc := range cases {
		if got := covers(tc.names, tc.want); got != tc.ok {
			t.Errorf("covers(%v, %s) = %v", tc.names, tc.want, got)
		}
	}
}
