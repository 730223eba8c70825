package prereqs_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/coderctl/coderctl/internal/deploy"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/testenv/moto"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
	"github.com/coderctl/coderctl/stages/prereqs"
)

func TestMain(m *testing.M) { moto.Main(m) }

func checksByName(checks []engine.Check) map[string]engine.Check {
	out := map[string]engine.Check{}
	for _, c := range checks {
		out[c.Name] = c
	}
	return out
}

func createZone(t *testing.T, d *deploy.Deps, name string) string {
	t.Helper()
	out, err := d.AWS.Route53.CreateHostedZone(context.Background(), &route53.CreateHostedZoneInput{
		Name: aws.String(name), CallerReference: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/")
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		inputs map[string]string
		zone   string // hosted zone to create; its ID becomes HOSTED_ZONE_ID
		mutate func(d *deploy.Deps)
		want   map[string]engine.CheckStatus
		reason map[string]string
	}{
		{name: "defaults pass, quotas moto cannot answer warn",
			want: map[string]engine.CheckStatus{"credentials": engine.Pass, "region": engine.Pass, "instance-types": engine.Pass,
				"quota-vcpus": engine.Warn, "quota-eips": engine.Warn, "quota-vpcs": engine.Pass, "hosted-zone": engine.Pass, "inputs": engine.Pass},
			reason: map[string]string{"quota-vcpus": "1022 vCPUs", "credentials": "123456789012"}},
		{name: "zone of the domain", zone: "example.com",
			want: map[string]engine.CheckStatus{"hosted-zone": engine.Pass}, reason: map[string]string{"hosted-zone": "example.com"}},
		{name: "zone of another domain", zone: "other.org",
			want: map[string]engine.CheckStatus{"hosted-zone": engine.Fail}, reason: map[string]string{"hosted-zone": "cannot hold records for coder.example.com"}},
		{name: "zone that does not exist", inputs: map[string]string{"CODER_DOMAIN": "coder.example.com", "HOSTED_ZONE_ID": "ZDOESNOTEXIST"},
			want: map[string]engine.CheckStatus{"hosted-zone": engine.Fail}},
		{name: "instance type not offered", mutate: func(d *deploy.Deps) { d.Cluster.ManagedNodeGroups[3].InstanceType = "m7i.96xlarge" },
			want:   map[string]engine.CheckStatus{"instance-types": engine.Fail, "quota-vcpus": engine.Warn},
			reason: map[string]string{"instance-types": "m7i.96xlarge in us-west-2a"}},
		{name: "availability zone not in the region", mutate: func(d *deploy.Deps) { d.Cluster.AvailabilityZones[2] = "us-west-2z" },
			want: map[string]engine.CheckStatus{"region": engine.Fail}, reason: map[string]string{"region": "us-west-2z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := stagetest.New(t, tt.inputs)
			if tt.zone != "" {
				id := createZone(t, env.Deps, tt.zone)
				if err := env.Deps.State.Set("HOSTED_ZONE_ID", id); err != nil {
					t.Fatal(err)
				}
				env.Reload(t)
			}
			if tt.mutate != nil {
				tt.mutate(env.Deps)
			}
			env.Calls.Reset()
			checks := checksByName(prereqs.New(env.Deps).Verify(context.Background()))
			for name, want := range tt.want {
				if got := checks[name]; got.Status != want {
					t.Errorf("%s = %s (%s), want %s", name, got.Status, got.Reason, want)
				}
			}
			for name, want := range tt.reason {
				if !strings.Contains(checks[name].Reason, want) {
					t.Errorf("%s reason %q lacks %q", name, checks[name].Reason, want)
				}
			}
			if m := env.Calls.Mutations(); len(m) != 0 {
				t.Errorf("verify made mutating calls: %v", m)
			}
		})
	}
}

func TestValidateRequiresDomain(t *testing.T) {
	env := stagetest.New(t, map[string]string{"USERS": "100"})
	v := prereqs.New(env.Deps)
	err := v.Validate(context.Background())
	if !fault.IsInput(err) || !strings.Contains(err.Error(), "CODER_DOMAIN") {
		t.Fatalf("err = %v, want bad input naming CODER_DOMAIN", err)
	}
}
