package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/testenv/moto"
)

func TestParseLocation(t *testing.T) {
	tests := []struct {
		value string
		want  Location
		bad   string // fragment of the InputError, "" = valid
	}{
		{value: "coder-infra.env", want: Location{Path: "coder-infra.env"}},
		{value: "/srv/state/prod.env", want: Location{Path: "/srv/state/prod.env"}},
		{value: "s3://acme-state/prod/coder-infra.env", want: Location{Bucket: "acme-state", Key: "prod/coder-infra.env"}},
		{value: "s3://acme.state.v2/k", want: Location{Bucket: "acme.state.v2", Key: "k"}},
		{value: "s3://acme-state/prod.env?region=eu-west-1", want: Location{Bucket: "acme-state", Key: "prod.env", Region: "eu-west-1"}},
		{value: "s3://", bad: "names no bucket"},
		{value: "s3:///key", bad: "names no bucket"},
		{value: "s3://acme-state", bad: "no object key"},
		{value: "s3://acme-state/", bad: "no object key"},
		{value: "s3://acme-state/prod/", bad: "name the object, not a folder"},
		{value: "S3://acme-state/k", bad: "lower case"},
		{value: "s3://Acme_State/k", bad: "not a valid S3 bucket name"},
		{value: "s3://ab/k", bad: "not a valid S3 bucket name"},
		{value: "s3://a..b/k", bad: "not a valid S3 bucket name"},
		{value: "s3://192.168.1.1/k", bad: "not a valid S3 bucket name"},
		{value: "s3://acme-state/k\nx", bad: "control character"},
		{value: "s3://acme-state/" + strings.Repeat("k", 1020), bad: "over S3's limit"},
		{value: "s3://acme-state/k?region=mars", bad: "region=REGION"},
		{value: "s3://acme-state/k?versionId=3", bad: "region=REGION"},
		{value: "s3://acme-state/k?region=us-east-1&region=us-west-2", bad: "region=REGION"},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			got, err := ParseLocation("flag --state", tc.value)
			if tc.bad != "" {
				wantInputError(t, err, "flag --state", tc.bad)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseLocation = %+v, %v; want %+v", got, err, tc.want)
			}
			if got.Remote() && got.String() != strings.Split(tc.value, "?")[0] {
				t.Errorf("String() = %q", got.String())
			}
		})
	}
}

// s3World is a bucket in the shared moto, and a client to look behind
// coderctl's back.
type s3World struct {
	t      *testing.T
	client *s3.Client
	bucket string
}

// motoOnce resets moto once for the package: a reset reloads IAM's managed
// policies (seconds on a loaded machine), and each test has its own bucket.
var (
	motoOnce   sync.Once
	motoServer *moto.Server
	buckets    atomic.Int32
)

func newS3World(t *testing.T, versioned bool) *s3World {
	t.Helper()
	motoOnce.Do(func() { motoServer = moto.Require(t) })
	for _, kv := range motoServer.Environ("us-west-2") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := motoServer.AWSConfig(context.Background(), "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	w := &s3World{t: t, client: s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle, o.Logger = true, logging.Nop{} }),
		bucket: fmt.Sprintf("coderctl-state-%d", buckets.Add(1))}
	_, err = w.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(w.bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraintUsWest2}})
	if err != nil {
		t.Fatal(err)
	}
	if versioned {
		_, err = w.client.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: aws.String(w.bucket),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *s3World) loc(key string) Location { return Location{Bucket: w.bucket, Key: key} }

func (w *s3World) connect(key string) *Remote {
	w.t.Helper()
	r, _, err := ConnectRemote(context.Background(), w.loc(key), "test")
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// get reads an object directly; "" and false when it does not exist.
func (w *s3World) get(key string) (string, bool) {
	w.t.Helper()
	out, err := w.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return "", false
		}
		w.t.Fatal(err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b), true
}

// put writes an object directly, as 'aws s3 cp' would: unconditionally.
func (w *s3World) put(key, data string) {
	w.t.Helper()
	_, err := w.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key), Body: strings.NewReader(data)})
	if err != nil {
		w.t.Fatal(err)
	}
}

func TestConnectRemote(t *testing.T) {
	ctx := context.Background()
	t.Run("versioning off is a warning", func(t *testing.T) {
		w := newS3World(t, false)
		_, warnings, err := ConnectRemote(ctx, w.loc("prod.env"), "test")
		if err != nil {
			t.Fatal(err)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "versioning off") || !strings.Contains(warnings[0], "put-bucket-versioning --bucket "+w.bucket) {
			t.Errorf("warnings = %q, want one saying versioning is off and how to turn it on", warnings)
		}
	})
	t.Run("versioning on says nothing", func(t *testing.T) {
		w := newS3World(t, true)
		_, warnings, err := ConnectRemote(ctx, w.loc("prod.env"), "test")
		if err != nil || len(warnings) != 0 {
			t.Fatalf("ConnectRemote: %v, warnings %q", err, warnings)
		}
	})
	t.Run("missing bucket is bad input", func(t *testing.T) {
		newS3World(t, true)
		_, _, err := ConnectRemote(ctx, Location{Bucket: "no-such-bucket-here", Key: "prod.env"}, "test")
		wantInputError(t, err, "s3://no-such-bucket-here/prod.env", "bucket no-such-bucket-here does not exist", "create it")
	})
	t.Run("missing object is bad input for Require", func(t *testing.T) {
		w := newS3World(t, true)
		err := w.connect("prod.env").Require(ctx)
		wantInputError(t, err, "s3://"+w.bucket+"/prod.env", "state object not found", "state push")
	})
}

// TestRemoteStoreWritesConditionally: the first write creates the object
// (If-None-Match), later ones replace the version read (If-Match), and the
// object is the same dotenv text the local file would be.
func TestRemoteStoreWritesConditionally(t *testing.T) {
	ctx := context.Background()
	w := newS3World(t, true)
	r := w.connect("prod/coder-infra.env")
	s, err := OpenRemote(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != "s3://"+w.bucket+"/prod/coder-infra.env" || len(s.Snapshot()) != 0 {
		t.Fatalf("a store on a missing object: path %q, values %v", s.Path(), s.Snapshot())
	}
	values := map[string]string{"CODER_DOMAIN": "coder.example.com", "NOTE": `it's "quoted" $HOME`, "PRIVATE_SUBNET_IDS": "subnet-1,subnet-2"}
	if err := s.SetMany(values); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("VPC_ID", "vpc-0abc"); err != nil {
		t.Fatal(err)
	}
	got, ok := w.get("prod/coder-infra.env")
	local := &File{name: "x", last: map[string]int{}}
	for _, k := range []string{"CODER_DOMAIN", "NOTE", "PRIVATE_SUBNET_IDS", "VPC_ID"} {
		v := values[k]
		if k == "VPC_ID" {
			v = "vpc-0abc"
		}
		if err := local.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if !ok || got != string(local.Bytes()) {
		t.Fatalf("object = %q, want the local file's text %q", got, local.Bytes())
	}
	// A second store reads what the first wrote.
	again, err := OpenRemote(ctx, w.connect("prod/coder-infra.env"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Get("NOTE") != values["NOTE"] || again.Get("VPC_ID") != "vpc-0abc" {
		t.Errorf("re-read: %v", again.Snapshot())
	}
}

// TestRemoteLostUpdateImpossible: a write over a version this store did
// not read is refused by S3, and the other writer's change survives.
func TestRemoteLostUpdateImpossible(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		before string // object content before both stores open ("" = none)
		other  func(w *s3World, key string)
	}{
		{name: "changed behind the store", before: "A=1\n", other: func(w *s3World, key string) { w.put(key, "A=1\nB=theirs\n") }},
		{name: "created behind the store", other: func(w *s3World, key string) { w.put(key, "B=theirs\n") }},
		{name: "another store wrote first", before: "A=1\n", other: func(w *s3World, key string) {
			other, err := OpenRemote(ctx, w.connect(key))
			if err != nil || other.Set("B", "theirs") != nil {
				w.t.Fatalf("other store: %v", err)
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newS3World(t, true)
			key := fmt.Sprintf("lost-%d.env", i)
			if tc.before != "" {
				w.put(key, tc.before)
			}
			mine, err := OpenRemote(ctx, w.connect(key))
			if err != nil {
				t.Fatal(err)
			}
			tc.other(w, key)
			theirs, _ := w.get(key)
			err = mine.Set("C", "mine")
			if !errors.Is(err, ErrRemoteChanged) || !strings.Contains(err.Error(), "nothing was overwritten") || !strings.Contains(err.Error(), "state pull") {
				t.Fatalf("write over a changed object: %v, want ErrRemoteChanged saying what to do", err)
			}
			if fault.ExitCode(err) != fault.ExitFailed {
				t.Errorf("exit code %d, want 1 (a run's failure, not bad input)", fault.ExitCode(err))
			}
			if now, _ := w.get(key); now != theirs || !strings.Contains(now, "B=theirs") {
				t.Errorf("object after the refused write = %q, want the other writer's %q", now, theirs)
			}
			if _, ok := mine.Lookup("C"); ok {
				t.Error("a refused write was kept in memory")
			}
		})
	}
}

func TestRemoteLock(t *testing.T) {
	ctx := context.Background()
	w := newS3World(t, true)
	r := w.connect("prod.env")
	first, err := r.Lock(ctx, "coderctl up")
	if err != nil {
		t.Fatal(err)
	}
	body, ok := w.get("prod.env.lock")
	if !ok {
		t.Fatal("no lock object KEY.lock")
	}
	for _, secret := range []string{"testing", os.Getenv("AWS_SECRET_ACCESS_KEY")} {
		if strings.Contains(body, `"`+secret+`"`) {
			t.Errorf("the lock object holds a credential: %s", body)
		}
	}
	info := first.Info()
	host, _ := os.Hostname()
	if info.PID != os.Getpid() || info.Host != host || info.Command != "coderctl up" || len(info.ID) != 36 || !strings.Contains(info.Who, "arn:aws:") {
		t.Errorf("lock info %+v", info)
	}
	if !strings.Contains(body, `"id":"`+info.ID+`"`) || !strings.Contains(body, `"since":"`) {
		t.Errorf("lock object %s", body)
	}

	_, err = w.connect("prod.env").Lock(ctx, "coderctl down")
	var le *fault.LockedError
	if !errors.As(err, &le) || fault.ExitCode(err) != fault.ExitLocked {
		t.Fatalf("second lock: %v, want a LockedError (exit 3)", err)
	}
	for _, want := range []string{"s3://" + w.bucket + "/prod.env is locked by another coderctl run", fmt.Sprintf("pid %d on %s running 'coderctl up' since ", os.Getpid(), host),
		"lock ID " + info.ID, "state unlock " + info.ID, info.Who} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}

	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if _, ok := w.get("prod.env.lock"); ok {
		t.Fatal("lock object left after Release")
	}
	second, err := r.Lock(ctx, "coderctl down")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	defer second.Release()
}

// TestRemoteReleaseLeavesAnotherRunsLock: after 'state unlock' removed a
// (wrongly presumed dead) run's lock and a new run took it, the old run's
// release must not remove the new run's lock.
func TestRemoteReleaseLeavesAnotherRunsLock(t *testing.T) {
	ctx := context.Background()
	w := newS3World(t, true)
	r := w.connect("prod.env")
	old, err := r.Lock(ctx, "coderctl up")
	if err != nil {
		t.Fatal(err)
	}
	_, etag, err := r.CurrentLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Unlock(ctx, old.Info().ID, etag); err != nil {
		t.Fatal(err)
	}
	newer, err := r.Lock(ctx, "coderctl verify")
	if err != nil {
		t.Fatal(err)
	}
	defer newer.Release()
	if err := old.Release(); err == nil || !strings.Contains(err.Error(), "no longer this run's") {
		t.Errorf("old Release: %v, want a refusal", err)
	}
	held, _, err := r.CurrentLock(ctx)
	if err != nil || held.ID != newer.Info().ID {
		t.Fatalf("lock after the old run's release: %+v, %v; want the newer run's", held, err)
	}
}

// TestRemoteReleaseAfterCancel: Ctrl-C cancels the run's context; the lock
// is still released on the way out.
func TestRemoteReleaseAfterCancel(t *testing.T) {
	w := newS3World(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	l, err := w.connect("prod.env").Lock(ctx, "coderctl up")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.get("prod.env.lock"); ok {
		t.Error("lock left after a release following cancellation")
	}
}

func TestRemoteUnlock(t *testing.T) {
	ctx := context.Background()
	w := newS3World(t, true)
	r := w.connect("prod.env")
	if _, _, err := r.CurrentLock(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("CurrentLock without a lock: %v", err)
	}
	l, err := r.Lock(ctx, "coderctl up")
	if err != nil {
		t.Fatal(err)
	}
	held, etag, err := r.CurrentLock(ctx)
	if err != nil || held.ID != l.Info().ID {
		t.Fatalf("CurrentLock = %+v, %v", held, err)
	}
	// An ETag that is not the lock's any more (the lock was re-taken).
	wantInputError(t, r.Unlock(ctx, held.ID, `"0123456789abcdef0123456789abcdef"`), "changed while unlocking", "nothing was removed")
	if _, ok := w.get("prod.env.lock"); !ok {
		t.Fatal("a refused unlock removed the lock")
	}
	if err := r.Unlock(ctx, held.ID, etag); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.get("prod.env.lock"); ok {
		t.Error("lock left after Unlock")
	}
	// A foreign lock object is described, not trusted.
	w.put("prod.env.lock", "not json")
	held, _, err = r.CurrentLock(ctx)
	if err != nil || held.ID != "(none)" || !strings.Contains(held.Command, "not json") {
		t.Errorf("foreign lock object read as %+v, %v", held, err)
	}
}

// TestPullSourcePush: a pulled copy is sourceable and gives bash the
// values the store has; pushing it back works once; a push over a changed
// remote, or of a copy never pulled over an existing object, is refused.
func TestPullSourcePush(t *testing.T) {
	ctx := context.Background()
	w := newS3World(t, true)
	r := w.connect("prod.env")
	s, err := OpenRemote(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"CODER_DOMAIN": "coder.example.com", "NOTE": `it's "odd" $HOME \ and ! too`, "EMPTY": ""}
	if err := s.SetMany(values); err != nil {
		t.Fatal(err)
	}
	data, etag, err := r.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pulled.env")
	if err := WriteAtomic(path, PulledCopy(r.Location(), etag, data, time.Now())); err != nil {
		t.Fatal(err)
	}
	if got := bashRead(t, path, "CODER_DOMAIN", "NOTE", "EMPTY"); fmt.Sprint(got) != fmt.Sprint(values) {
		t.Errorf("bash read the pulled copy as %v, want %v", got, values)
	}
	if got := godotenvRead(t, path); fmt.Sprint(got) != fmt.Sprint(values) {
		t.Errorf("godotenv read the pulled copy as %v, want %v", got, values)
	}

	copyData, _ := os.ReadFile(path)
	p, err := ReadPulled(path, copyData)
	if err != nil || p.From != "s3://"+w.bucket+"/prod.env" || p.ETag != etag || !bytes.Equal(p.Body, data) {
		t.Fatalf("ReadPulled = %+v, %v", p, err)
	}
	edited := *p
	edited.Body = append(append([]byte(nil), p.Body...), "USERS=300\n"...)
	if _, err := r.Push(ctx, path, &edited); err != nil {
		t.Fatalf("push of a fresh copy: %v", err)
	}
	if now, _ := w.get("prod.env"); !strings.HasSuffix(now, "USERS=300\n") || strings.Contains(now, pullPrefix) {
		t.Fatalf("object after push = %q, want the edit and no pull line", now)
	}
	pushed, _ := w.get("prod.env")

	tests := []struct {
		name string
		p    *Pulled
		want string
	}{
		{"the remote changed since the pull", p, "changed since this copy was pulled"},
		{"never pulled", &Pulled{Body: []byte("USERS=1\n")}, "was not pulled from it"},
		{"pulled elsewhere", &Pulled{Body: []byte("USERS=1\n"), From: "s3://other/prod.env", ETag: etag}, "pulled from s3://other/prod.env"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Push(ctx, path, tc.p)
			wantInputError(t, err, path, tc.want, "pull a fresh copy")
			if now, _ := w.get("prod.env"); now != pushed {
				t.Errorf("a refused push changed the object to %q", now)
			}
		})
	}
	// A copy never pulled goes where no object exists yet: a migration.
	fresh := w.connect("new.env")
	if _, err := fresh.Push(ctx, path, &Pulled{Body: []byte("USERS=1\n")}); err != nil {
		t.Fatalf("first push to a new key: %v", err)
	}
}

func TestReadPulledRefusesDamage(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"not a state file", "THIS IS NOT AN ASSIGNMENT\n", "pulled.env:1"},
		{"a secret", "DB_PASSWORD=hunter2\n", "DB_PASSWORD"},
		{"damaged pull line", pullPrefix + "s3://b/k etag\nA=1\n", "damaged"},
		{"error on line 3 counted with the pull line", pullPrefix + "s3://b/k etag \"x\" at T\nA=1\nnope\n", "pulled.env:3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadPulled("pulled.env", []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadPulled: %v, want it to say %q", err, tc.want)
			}
		})
	}
}
