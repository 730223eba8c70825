package kube

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientauthv1beta1 "k8s.io/client-go/pkg/apis/clientauthentication/v1beta1"
)

// The EKS token format, as `aws eks get-token` and aws-iam-authenticator
// make it. The token is a presigned STS GetCallerIdentity URL: the cluster's
// authenticator calls it (with the cluster header) and learns who we are.
//
// aws-iam-authenticator's pkg/token is not used: it signs with aws-sdk-go v1
// (github.com/aws/aws-sdk-go/aws/session and service/sts, plus logrus), a
// second AWS SDK this binary does not otherwise need and which is not in
// the module set (checked against the authenticator's go.mod and
// pkg/token/token.go). Presigning with SDK v2 takes a dozen lines.
const (
	// ClusterIDHeader is the signed header naming the cluster the token is
	// for, so a token for one cluster is refused by another.
	ClusterIDHeader = "x-k8s-aws-id"
	// TokenPrefix marks version 1 of the token format.
	TokenPrefix = "k8s-aws-v1."
	// presignExpires is the X-Amz-Expires the AWS CLI sends (60 s). EKS's
	// authenticator only checks that it is between 0 and 900: it honours a
	// presigned GetCallerIdentity for 15 minutes after X-Amz-Date, whatever
	// X-Amz-Expires says.
	presignExpires = 60
	// tokenLifetime is how long EKS accepts the token after signing.
	tokenLifetime = 15 * time.Minute
	// refreshMargin is how much earlier than that we call the token expired,
	// so that clients fetch a new one before the old one is refused.
	refreshMargin = time.Minute
)

// Token returns a bearer token for the EKS cluster named cluster, made from
// the credentials of client, and the time after which it must be replaced.
// The token is a credential: print it only where a credential belongs (the
// exec plugin's stdout), never in logs, errors or the state file.
func Token(ctx context.Context, client *sts.Client, cluster string) (token string, expires time.Time, err error) {
	if client == nil {
		return "", time.Time{}, errors.New("kube: no STS client to sign the EKS token with")
	}
	if cluster == "" {
		return "", time.Time{}, errors.New("kube: an EKS token needs the cluster name")
	}
	// Taken before signing, so X-Amz-Date is never earlier than this and
	// the expiry we report is never later than EKS's.
	signedAt := time.Now()
	req, err := sts.NewPresignClient(client).PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, withClusterID(cluster))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign an STS GetCallerIdentity request for EKS cluster %s: %w", cluster, err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(req.URL))
	return token, signedAt.Add(tokenLifetime - refreshMargin), nil
}

// withClusterID adds the signed cluster header and X-Amz-Expires to the
// presigned request.
func withClusterID(cluster string) func(*sts.PresignOptions) {
	return func(o *sts.PresignOptions) {
		o.ClientOptions = append(o.ClientOptions, func(so *sts.Options) {
			so.APIOptions = append(so.APIOptions, smithyhttp.AddHeaderValue(ClusterIDHeader, cluster), addPresignExpires)
		})
	}
}

// addPresignExpires sets X-Amz-Expires before the request is presigned; the
// SDK's presigner signs whatever query it finds but never adds this one.
func addPresignExpires(stack *middleware.Stack) error {
	return stack.Build.Add(middleware.BuildMiddlewareFunc("coderctlPresignExpires",
		func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				q := req.URL.Query()
				q.Set("X-Amz-Expires", strconv.Itoa(presignExpires))
				req.URL.RawQuery = q.Encode()
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
}

// ExecCredentialJSON is the answer of a kubectl exec credential plugin
// (client.authentication.k8s.io/v1beta1) carrying token until expires.
func ExecCredentialJSON(token string, expires time.Time) ([]byte, error) {
	exp := metav1.NewTime(expires.UTC().Truncate(time.Second))
	cred := clientauthv1beta1.ExecCredential{
		TypeMeta: metav1.TypeMeta{APIVersion: clientauthv1beta1.SchemeGroupVersion.String(), Kind: "ExecCredential"},
		Status:   &clientauthv1beta1.ExecCredentialStatus{Token: token, ExpirationTimestamp: &exp},
	}
	return json.Marshal(cred)
}
