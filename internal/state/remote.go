package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/fsx"
)

// Remote is state kept as one S3 object, the same dotenv text as the local
// file. Every write is a conditional PutObject: If-Match on the ETag last
// read or written, If-None-Match: * for the first, so a write over a change
// made meanwhile is refused by S3 itself, never lost. The run lock is a
// second object beside it (remote_lock.go).
type Remote struct {
	loc    Location
	cfg    aws.Config
	client *s3.Client
}

// callTimeout bounds one S3 call made outside the run's context (see
// detached); the SDK retries within it.
const callTimeout = 2 * time.Minute

// fallbackRegion is asked where a bucket is when nothing names a region:
// S3 answers HeadBucket for any bucket there with the bucket's own region.
const fallbackRegion = "us-east-1"

// ErrRemoteChanged says a conditional write was refused: the object is no
// longer the version this run read (S3's 412 Precondition Failed).
var ErrRemoteChanged = errors.New("the remote state changed since this run read it")

// ConnectRemote reaches the bucket of loc and checks it before anything is
// read or written: a missing bucket and a refused HeadBucket are bad input.
// The region is the URL's ?region=, else the AWS configuration's (AWS_REGION,
// the profile), else the bucket's own; when the bucket turns out to be in
// another region than the configuration's, S3's redirect is followed (a
// region in the URL that is wrong is refused instead). The returned
// warnings are for stderr: versioning off (no history of the state).
func ConnectRemote(ctx context.Context, loc Location, version string) (*Remote, []string, error) {
	cfg, err := awsx.LoadConfig(ctx, loc.Region, version)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Region == "" {
		cfg.Region = fallbackRegion
	}
	r := &Remote{loc: loc, cfg: cfg, client: newS3Client(cfg)}
	region, err := r.headBucket(ctx)
	if err != nil {
		return nil, nil, err
	}
	if region != "" && region != cfg.Region {
		if loc.Region != "" {
			return nil, nil, fault.Input(loc.String(), "", "fix ?region= in the URL or leave it out",
				"bucket %s is in %s, not %s", loc.Bucket, region, loc.Region)
		}
		r.cfg.Region = region
		r.client = newS3Client(r.cfg)
	}
	return r, r.versioningWarnings(ctx), nil
}

// newS3Client uses path-style addresses when an endpoint is configured
// (AWS_ENDPOINT_URL: moto, MinIO, a VPC endpoint by URL), where
// bucket.host names do not resolve; AWS itself gets virtual-hosted style.
func newS3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	})
}

// Location is where this state lives.
func (r *Remote) Location() Location { return r.loc }

// lockKey is the lock object's key, KEY.lock (Terraform's use_lockfile
// names its lock the same way).
func (r *Remote) lockKey() string { return r.loc.Key + lockSuffix }

// headBucket proves the bucket exists and may be used, and returns its
// region when S3 says it (a redirect, or the answer's x-amz-bucket-region).
func (r *Remote) headBucket(ctx context.Context) (string, error) {
	out, err := r.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(r.loc.Bucket)})
	if err == nil {
		return aws.ToString(out.BucketRegion), nil
	}
	if region := redirectRegion(err); region != "" {
		return region, nil
	}
	return "", r.inputProblem("HeadBucket", err)
}

// redirectRegion is the region S3 names when it answers 301 for a bucket
// in another region.
func redirectRegion(err error) string {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusMovedPermanently {
		return re.Response.Header.Get("x-amz-bucket-region")
	}
	return ""
}

// versioningWarnings says when the bucket keeps no history of the state.
func (r *Remote) versioningWarnings(ctx context.Context) []string {
	out, err := r.client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(r.loc.Bucket)})
	switch {
	case err != nil:
		return []string{fmt.Sprintf("cannot tell whether bucket %s keeps versions (GetBucketVersioning: %s); without versioning there is no history of the state", r.loc.Bucket, awsx.ErrorCode(err))}
	case out.Status != s3types.BucketVersioningStatusEnabled:
		return []string{fmt.Sprintf("bucket %s has versioning off: S3 keeps no history of the state, so an overwrite or delete cannot be undone (enable it: aws s3api put-bucket-versioning --bucket %s --versioning-configuration Status=Enabled)", r.loc.Bucket, r.loc.Bucket)}
	}
	return nil
}

// Require refuses a state object that does not exist yet, before any lock
// is taken: the inputs live there.
func (r *Remote) Require(ctx context.Context) error {
	_, err := r.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(r.loc.Bucket), Key: aws.String(r.loc.Key)})
	if err == nil {
		return nil
	}
	if isNotFound(err) {
		return fault.Input(r.loc.String(), "", "upload a state file first: 'coderctl --state "+r.loc.String()+" state push coder-infra.env' (write one with 'coderctl init')", "state object not found")
	}
	return r.inputProblem("HeadObject", err)
}

// Read returns the object's content and its ETag; fs.ErrNotExist when there
// is no object yet. Reads are bounded like the local file's.
func (r *Remote) Read(ctx context.Context) ([]byte, string, error) {
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.loc.Bucket), Key: aws.String(r.loc.Key)})
	if err != nil {
		if isNotFound(err) {
			return nil, "", fs.ErrNotExist
		}
		return nil, "", r.failure("read", "GetObject", err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, fsx.MaxInputFile+1))
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", r.loc, err)
	}
	if len(data) > fsx.MaxInputFile {
		return nil, "", fault.Input(r.loc.String(), "", "the state is a short dotenv text; check what wrote this object", "larger than %d bytes", fsx.MaxInputFile)
	}
	return data, aws.ToString(out.ETag), nil
}

// Put writes data if the object is still at version etag ("" = only if no
// object exists) and returns the new ETag. A refused condition is
// ErrRemoteChanged.
func (r *Remote) Put(ctx context.Context, data []byte, etag string) (string, error) {
	in := &s3.PutObjectInput{Bucket: aws.String(r.loc.Bucket), Key: aws.String(r.loc.Key),
		Body: bytes.NewReader(data), ContentType: aws.String("text/plain; charset=utf-8")}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	out, err := putRetryingConflicts(ctx, r.client, in)
	if err != nil {
		// If-Match on an object deleted meanwhile is S3's 404 NoSuchKey.
		if isPreconditionFailed(err) || (etag != "" && isNotFound(err)) {
			return "", ErrRemoteChanged
		}
		return "", r.failure("write", "PutObject", err)
	}
	return aws.ToString(out.ETag), nil
}

// putRetryingConflicts retries S3's 409 ConditionalRequestConflict, which
// says another conditional write to the key was in flight: the documented
// answer is to try again, when the condition decides.
func putRetryingConflicts(ctx context.Context, c *s3.Client, in *s3.PutObjectInput) (*s3.PutObjectOutput, error) {
	const attempts = 4
	var err error
	for i := 0; i < attempts; i++ {
		if _, serr := in.Body.(io.Seeker).Seek(0, io.SeekStart); serr != nil {
			return nil, serr
		}
		var out *s3.PutObjectOutput
		out, err = c.PutObject(ctx, in)
		if awsx.ErrorCode(err) != "ConditionalRequestConflict" {
			return out, err
		}
	}
	return nil, err
}

// inputProblem words an S3 error met before anything changed as bad input
// when it is the user's to fix (bucket, permission, credentials).
func (r *Remote) inputProblem(op string, err error) error {
	if awsx.IsCredentialsError(err) {
		return awsx.CredentialsInput(err)
	}
	if msg, hint, ok := r.plain(op, err); ok {
		return fault.Input(r.loc.String(), "", hint, "%s", msg)
	}
	return fmt.Errorf("%s: S3 %s: %w", r.loc, op, err)
}

// failure words an S3 error met during a run: the same plain words, but
// not bad input, since the run may have changed things already.
func (r *Remote) failure(what, op string, err error) error {
	if msg, hint, ok := r.plain(op, err); ok {
		return fmt.Errorf("%s: cannot %s the remote state: %s (%s)", r.loc, what, msg, hint)
	}
	return fmt.Errorf("%s: cannot %s the remote state: S3 %s: %w", r.loc, what, op, err)
}

// plain says in words what S3's refusal means: the bucket is missing, or
// the identity may not use it. HeadBucket answers without a body, hence the
// status codes next to the error codes.
func (r *Remote) plain(op string, err error) (msg, hint string, ok bool) {
	code, status := awsx.ErrorCode(err), httpStatus(err)
	switch {
	case code == "NoSuchBucket" || (op == "HeadBucket" && status == http.StatusNotFound):
		return fmt.Sprintf("bucket %s does not exist", r.loc.Bucket),
			fmt.Sprintf("create it with versioning on (aws s3api create-bucket --bucket %s, then put-bucket-versioning), or fix the bucket in --state", r.loc.Bucket), true
	case code == "AccessDenied" || code == "Forbidden" || status == http.StatusForbidden:
		return fmt.Sprintf("access denied to %s (S3 %s)", r.loc, op),
			fmt.Sprintf("the identity running coderctl needs s3:ListBucket on bucket %s and s3:GetObject, s3:PutObject and s3:DeleteObject on %s and %s; see docs/remote-state.md", r.loc.Bucket, r.loc.Key, r.lockKey()), true
	}
	return "", "", false
}

// httpStatus is the HTTP status of a failed call (0 when there was none).
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// isNotFound: GetObject says NoSuchKey, HeadObject (no body) says NotFound.
func isNotFound(err error) bool {
	code := awsx.ErrorCode(err)
	return code == "NoSuchKey" || code == "NotFound" || (httpStatus(err) == http.StatusNotFound && code != "NoSuchBucket")
}

func isPreconditionFailed(err error) bool {
	return awsx.ErrorCode(err) == "PreconditionFailed" || httpStatus(err) == http.StatusPreconditionFailed
}

// callerARN is who runs coderctl, for the lock holder's line; "" when STS
// does not say. It is an identity, never a credential.
func (r *Remote) callerARN(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := sts.NewFromConfig(r.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return ""
	}
	return aws.ToString(out.Arn)
}

// detached is a context for a write that must happen even when the run's
// context is cancelled: an output recorded after Ctrl-C, a lock released on
// the way out. Without it a run interrupted after creating a resource would
// forget it, and a lock would outlive its run.
func detached() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}
