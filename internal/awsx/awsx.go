// Package awsx builds AWS SDK clients the way every stage needs them: the
// standard credential chain and profiles, the SDK's own AWS_ENDPOINT_URL
// support, adaptive retries and a coderctl user agent.
package awsx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/coderctl/coderctl/internal/fault"
)

// MaxAttempts bounds the SDK's retries of one call (throttling, 5xx, dropped
// connections); adaptive mode also rate-limits the client after throttling.
const MaxAttempts = 12

// LoadConfig loads the AWS configuration for region from the standard chain.
// extra lets callers (tests, the call counter) add API options.
func LoadConfig(ctx context.Context, region, version string, extra ...func(*smithymiddleware.Stack) error) (aws.Config, error) {
	apiOpts := append([]func(*smithymiddleware.Stack) error{
		awsmiddleware.AddUserAgentKeyValue("coderctl", version),
	}, extra...)
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
					so.MaxAttempts = MaxAttempts
					so.MaxBackoff = 20 * time.Second
					// No client-side retry quota: a run makes a few hundred
					// calls over tens of minutes, and a burst of throttling
					// must slow it down (adaptive mode does), not drain a
					// token bucket and fail the run.
					so.RateLimiter = ratelimit.None
				})
			})
		}),
		config.WithAPIOptions(apiOpts),
		// The SDK's own logger writes warnings (e.g. IMDS fallbacks) to
		// stderr; coderctl reports failures itself, in one line.
		config.WithLogger(logging.Nop{}),
	)
	if err != nil {
		return aws.Config{}, fault.Input("AWS configuration", "", "check AWS_PROFILE and ~/.aws/config", "%v", err)
	}
	return cfg, nil
}

// Clients holds one client per AWS service coderctl uses. Clients are cheap
// to build and safe for concurrent use.
type Clients struct {
	Config         aws.Config
	ACM            *acm.Client
	AutoScaling    *autoscaling.Client
	EC2            *ec2.Client
	EKS            *eks.Client
	ELB            *elbv2.Client
	IAM            *iam.Client
	RDS            *rds.Client
	Route53        *route53.Client
	SecretsManager *secretsmanager.Client
	ServiceQuotas  *servicequotas.Client
	STS            *sts.Client
}

// NewClients builds every service client from one configuration.
func NewClients(cfg aws.Config) *Clients {
	return &Clients{
		Config:         cfg,
		ACM:            acm.NewFromConfig(cfg),
		AutoScaling:    autoscaling.NewFromConfig(cfg),
		EC2:            ec2.NewFromConfig(cfg),
		EKS:            eks.NewFromConfig(cfg),
		ELB:            elbv2.NewFromConfig(cfg),
		IAM:            iam.NewFromConfig(cfg),
		RDS:            rds.NewFromConfig(cfg),
		Route53:        route53.NewFromConfig(cfg),
		SecretsManager: secretsmanager.NewFromConfig(cfg),
		ServiceQuotas:  servicequotas.NewFromConfig(cfg),
		STS:            sts.NewFromConfig(cfg),
	}
}

// ErrorCode returns the AWS error code of err ("" when err is not an API error).
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// IsNotFound reports whether err is one of the "does not exist" codes the
// services use; destroy and adopt treat those as "already gone".
func IsNotFound(err error) bool {
	code := ErrorCode(err)
	if code == "" {
		return false
	}
	for _, suffix := range []string{"NotFound", "NotFoundException", "NotFoundFault", "NoSuchEntity", "NoSuchHostedZone", ".NotFound"} {
		if strings.HasSuffix(code, suffix) {
			return true
		}
	}
	return code == "ResourceNotFoundException"
}

// IsCredentialsError reports whether err comes from finding or using
// credentials rather than from the service.
func IsCredentialsError(err error) bool {
	if err == nil {
		return false
	}
	switch ErrorCode(err) {
	case "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException":
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "failed to retrieve credentials") || strings.Contains(msg, "no EC2 IMDS role found") ||
		strings.Contains(msg, "get identity: get credentials")
}

// CredentialsInput turns a credentials failure into bad input (exit 2).
func CredentialsInput(err error) error {
	return fault.Input("AWS credentials", "", "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run 'aws sso login'",
		"no usable credentials: %s", fault.FirstLine(err.Error()))
}

// Describe wraps an AWS error with what was being done, keeping the code.
func Describe(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
