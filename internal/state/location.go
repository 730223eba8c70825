package state

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/coderctl/coderctl/internal/fault"
)

// Location is where the state lives: a local file (Path) or one S3 object
// (Bucket and Key, with an optional Region from the URL).
type Location struct {
	Path        string
	Bucket, Key string
	Region      string
}

// s3Scheme is the only remote scheme.
const s3Scheme = "s3://"

// maxKeyBytes is S3's limit on an object key; the lock object's key adds
// ".lock" and must fit too.
const maxKeyBytes = 1024 - len(lockSuffix)

// bucketName is S3's naming rule for general purpose buckets: 3 to 63
// lower-case letters, digits, dots and hyphens, starting and ending with a
// letter or digit.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// regionName is the shape of an AWS region code (us-west-2, ap-southeast-5).
var regionName = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

const urlHint = "write s3://BUCKET/KEY, e.g. s3://acme-coderctl-state/prod/coder-infra.env, optionally with ?region=us-west-2"

// IsRemote reports whether value names remote state (an s3:// URL) rather
// than a local path.
func IsRemote(value string) bool {
	return strings.HasPrefix(strings.ToLower(value), s3Scheme)
}

// ParseLocation reads a --state value: an s3:// URL, or else a local path.
// source names where the value came from ("flag --state", "environment
// CODERCTL_STATE") for the InputError a bad URL is.
func ParseLocation(source, value string) (Location, error) {
	if !IsRemote(value) {
		return Location{Path: value}, nil
	}
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fault.Input(source, "", urlHint, format, args...)
	}
	if !strings.HasPrefix(value, s3Scheme) {
		return bad("%q: the scheme is s3:// in lower case", value)
	}
	rest, query, _ := strings.Cut(strings.TrimPrefix(value, s3Scheme), "?")
	bucket, key, _ := strings.Cut(rest, "/")
	switch {
	case bucket == "":
		return bad("%q names no bucket", value)
	case !bucketName.MatchString(bucket) || strings.Contains(bucket, "..") || net.ParseIP(bucket) != nil:
		return bad("%q: %q is not a valid S3 bucket name (3-63 lower-case letters, digits, dots and hyphens)", value, bucket)
	case key == "":
		return bad("%q names a bucket but no object key: the state is one object", value)
	case strings.HasSuffix(key, "/"):
		return bad("%q ends in '/': name the object, not a folder", value)
	case !utf8.ValidString(key) || strings.ContainsAny(key, "\x00\r\n"):
		return bad("%q: the object key has a control character or is not UTF-8", value)
	case len(key) > maxKeyBytes:
		return bad("the object key is %d bytes, over S3's limit with %q added (%d)", len(key), lockSuffix, maxKeyBytes)
	}
	loc := Location{Bucket: bucket, Key: key}
	if query == "" {
		return loc, nil
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return bad("%q: cannot read the query: %v", value, err)
	}
	for name, vals := range params {
		if name != "region" || len(vals) != 1 || !regionName.MatchString(vals[0]) {
			return bad("%q: the only query parameter is region=REGION once (e.g. region=eu-west-1), got %s=%s", value, name, strings.Join(vals, ","))
		}
		loc.Region = vals[0]
	}
	return loc, nil
}

// Remote reports whether the state is an S3 object.
func (l Location) Remote() bool { return l.Bucket != "" }

// String is the location as the user writes it (the URL without its query:
// the region is how to reach the object, not its name).
func (l Location) String() string {
	if !l.Remote() {
		return l.Path
	}
	return s3Scheme + l.Bucket + "/" + l.Key
}
