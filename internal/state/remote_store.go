package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/coderctl/coderctl/internal/fault"
)

// OpenRemote loads the remote state into a Store whose every write is a
// conditional put on the version it read. Stages see the same Store either
// way. A missing object is an empty File, as a missing local file is (the
// CLI decides when that is an error: Remote.Require).
func OpenRemote(ctx context.Context, r *Remote) (*Store, error) {
	f, _, etag, err := r.Load(ctx)
	if err != nil {
		return nil, err
	}
	return &Store{path: r.loc.String(), file: f, disk: f.Bytes(), remote: r, etag: etag}, nil
}

// Load reads and parses the remote state, returning its bytes and ETag too.
// Parse errors name the URL and line, as they name the file and line.
func (r *Remote) Load(ctx context.Context) (*File, []byte, string, error) {
	data, etag, err := r.Read(ctx)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &File{name: r.loc.String(), last: map[string]int{}}, nil, "", nil
	case err != nil:
		return nil, nil, "", err
	}
	f, err := Parse(r.loc.String(), data)
	if err != nil {
		return nil, nil, "", err
	}
	return f, data, etag, nil
}

// saveRemote is update's write for remote state. Unlike the local file,
// whose hand edits are merged, a changed object stops the write: the run
// holds the lock, so a change means someone wrote the object around it,
// and only a person can say which version is right. Called with s.mu held.
func (s *Store) saveRemote(data []byte) error {
	ctx, cancel := detached()
	defer cancel()
	etag, err := s.remote.Put(ctx, data, s.etag)
	if errors.Is(err, ErrRemoteChanged) {
		return fmt.Errorf("%s: %w (written around this run's lock, e.g. with 'aws s3 cp'), so nothing was overwritten: "+
			"see it with 'coderctl --state %s state pull', then run the command again, which re-reads it", s.path, err, s.path)
	}
	if err != nil {
		return err
	}
	s.etag = etag
	return nil
}

// pullPrefix starts the comment line 'state pull' puts first in the copy it
// writes, recording where the copy came from and the object's ETag then.
// It is a comment, so the copy stays a file bash and godotenv read; 'state
// push' reads it to refuse a copy whose remote changed since, and leaves it
// out of what it uploads.
const pullPrefix = "# coderctl state pull: "

// PulledCopy is the content of the remote state as 'state pull' writes it:
// the record line, then the object's text unchanged.
func PulledCopy(loc Location, etag string, data []byte, now time.Time) []byte {
	head := fmt.Sprintf("%s%s etag %s at %s (keep this line: 'coderctl state push' uses it to refuse this copy if the remote changed since)\n",
		pullPrefix, loc, etag, now.UTC().Format(time.RFC3339))
	return append([]byte(head), data...)
}

// Pulled is a local copy given to 'state push': its text without the
// record line, and where and at which ETag it was pulled ("" when the file
// has no record line: it was not pulled).
type Pulled struct {
	Body []byte
	From string
	ETag string
}

// ReadPulled parses a copy to push. The whole file must be valid state
// (errors name the file and line as written, record line included); the
// record line, when first, is split off.
func ReadPulled(name string, data []byte) (*Pulled, error) {
	if _, err := Parse(name, data); err != nil {
		return nil, err
	}
	p := &Pulled{Body: data}
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	record, ok := strings.CutPrefix(string(first), pullPrefix)
	if !ok {
		return p, nil
	}
	from, after, ok1 := strings.Cut(record, " etag ")
	etag, _, ok2 := strings.Cut(after, " at ")
	if !ok1 || !ok2 || from == "" || etag == "" {
		return nil, fmt.Errorf("%s:1: the 'coderctl state pull' line is damaged (%q): pull a fresh copy", name, abbreviate(string(first)))
	}
	p.Body, p.From, p.ETag = rest, from, etag
	return p, nil
}

// Push uploads a pulled copy under the run lock the caller holds. A copy
// pulled from this location is written only over the version it was pulled
// at; any other copy (never pulled, or pulled elsewhere: a migration) only
// where no object exists yet. A refusal is bad input: nothing changed.
func (r *Remote) Push(ctx context.Context, name string, p *Pulled) (string, error) {
	newETag, err := r.Put(ctx, p.Body, r.pushCondition(p))
	if errors.Is(err, ErrRemoteChanged) {
		return "", r.pushRefused(name, p)
	}
	return newETag, err
}

// CheckPush refuses, before the lock is taken, a push that Push would
// refuse as things stand; Push's conditional put still decides.
func (r *Remote) CheckPush(ctx context.Context, name string, p *Pulled) error {
	out, err := r.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(r.loc.Bucket), Key: aws.String(r.loc.Key)})
	current := ""
	switch {
	case err == nil:
		current = aws.ToString(out.ETag)
	case !isNotFound(err):
		return r.inputProblem("HeadObject", err)
	}
	if current != r.pushCondition(p) {
		return r.pushRefused(name, p)
	}
	return nil
}

// pushCondition is the ETag the object must have for p to be pushed ("" =
// no object).
func (r *Remote) pushCondition(p *Pulled) string {
	if p.From == r.loc.String() {
		return p.ETag
	}
	return ""
}

// pushRefused says why p may not be pushed here.
func (r *Remote) pushRefused(name string, p *Pulled) error {
	const hint = "pull a fresh copy ('coderctl state pull FILE'), make your edits there, and push that"
	switch {
	case p.From == r.loc.String():
		return refusal(name, hint, "the remote state %s changed since this copy was pulled (ETag %s); pushing it would undo that change", r.loc, p.ETag)
	case p.From != "":
		return refusal(name, hint, "this copy was pulled from %s, and %s already exists; pushing it would overwrite it unseen", p.From, r.loc)
	}
	return refusal(name, hint, "%s already exists and this file was not pulled from it (no 'coderctl state pull' line); pushing it would overwrite it unseen", r.loc)
}

// refusal is a refused push: bad input naming the file.
func refusal(name, hint, format string, args ...any) error {
	return fault.Input(name, "", hint, format, args...)
}
