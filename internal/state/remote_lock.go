package state

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/coderctl/coderctl/internal/fault"
)

// RemoteLock is a run's hold on remote state: the object KEY.lock, created
// with If-None-Match: * so that exactly one run can create it, holding who
// took it. Unlike the local flock nothing drops it when its holder dies: a
// run killed outright leaves it, and 'coderctl state unlock ID' removes it
// once a person has checked the run is gone.
type RemoteLock struct {
	mu   sync.Mutex
	r    *Remote
	info LockInfo
	etag string // of the lock object this run created; "" once released
}

// LockInfo is what the lock object says about the run that holds it. It
// names a process and an identity, never a credential.
type LockInfo struct {
	ID string `json:"id"`
	holder
	Who string `json:"who,omitempty"` // the caller's ARN, when STS said
}

// String reads like the local lock's holder line, with the identity and
// the lock ID that 'state unlock' needs.
func (h LockInfo) String() string {
	s := h.holder.String()
	if h.Who != "" {
		s += " as " + h.Who
	}
	return s + ", lock ID " + h.ID
}

// remoteLockAttempts bounds Lock's retries when the lock object it was
// refused by is gone by the time it reads it (released meanwhile).
const remoteLockAttempts = 5

// newLockID is a random UUID (version 4), as Terraform's lock IDs.
func newLockID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Lock takes the run lock without waiting. When another run holds it, the
// error is a *fault.LockedError naming the holder and how to remove a lock
// whose run is gone.
func (r *Remote) Lock(ctx context.Context, command string) (*RemoteLock, error) {
	info := LockInfo{ID: newLockID(), holder: thisRun(command), Who: r.callerARN(ctx)}
	body, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	for range remoteLockAttempts {
		in := &s3.PutObjectInput{Bucket: aws.String(r.loc.Bucket), Key: aws.String(r.lockKey()),
			Body: bytes.NewReader(append(body, '\n')), ContentType: aws.String("application/json"), IfNoneMatch: aws.String("*")}
		out, err := putRetryingConflicts(ctx, r.client, in)
		if err == nil {
			return &RemoteLock{r: r, info: info, etag: aws.ToString(out.ETag)}, nil
		}
		if !isPreconditionFailed(err) {
			return nil, r.inputProblem("PutObject "+r.lockKey(), err)
		}
		current, _, err := r.CurrentLock(ctx)
		if errors.Is(err, fs.ErrNotExist) {
			continue // released between our put and our read: try again
		}
		if err != nil {
			return nil, err
		}
		return nil, r.locked(current)
	}
	return nil, fmt.Errorf("lock %s: other runs kept taking and releasing the lock; try again", r.loc)
}

// locked is the refusal a second run gets, in the local lock's words.
func (r *Remote) locked(h *LockInfo) error {
	return &fault.LockedError{Path: r.loc.String(), Holder: fmt.Sprintf(
		"%s; if that run is gone (killed, its machine lost), remove the lock with 'coderctl --state %s state unlock %s'",
		h, r.loc, h.ID)}
}

// CurrentLock reads the lock object and its ETag; fs.ErrNotExist when the
// state is not locked. A lock object that is not coderctl's JSON is
// described rather than trusted.
func (r *Remote) CurrentLock(ctx context.Context) (*LockInfo, string, error) {
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.loc.Bucket), Key: aws.String(r.lockKey())})
	if err != nil {
		if isNotFound(err) {
			return nil, "", fs.ErrNotExist
		}
		return nil, "", r.inputProblem("GetObject "+r.lockKey(), err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxHolderBytes))
	if err != nil {
		return nil, "", fmt.Errorf("read lock %s: %w", r.lockKey(), err)
	}
	var h LockInfo
	if err := json.Unmarshal(data, &h); err != nil || h.ID == "" {
		h = LockInfo{ID: "(none)", holder: holder{Host: "unknown host", Command: fmt.Sprintf("unknown: %s says %q", r.lockKey(), abbreviate(string(bytes.TrimSpace(data))))}}
	}
	return &h, aws.ToString(out.ETag), nil
}

// Unlock removes the lock whose ID is id, only if the object is still the
// one read as etag: a lock taken again meanwhile (by a new run) is left.
// Refusals are bad input.
func (r *Remote) Unlock(ctx context.Context, id, etag string) error {
	_, err := r.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.loc.Bucket), Key: aws.String(r.lockKey()), IfMatch: aws.String(etag)})
	switch {
	case err == nil:
		return nil
	case isPreconditionFailed(err) || isNotFound(err):
		return fault.Input(r.loc.String(), "", "run 'coderctl state unlock' again with the current lock's ID if that run is gone too",
			"lock %s changed while unlocking (released, or taken by another run); nothing was removed", id)
	}
	return r.inputProblem("DeleteObject "+r.lockKey(), err)
}

// Info is what this lock says about its run.
func (l *RemoteLock) Info() LockInfo { return l.info }

// Release deletes the lock object, only if it is still the one this run
// created (DeleteObject If-Match its ETag): after a 'state unlock' a new
// run's lock may sit at the key, and it is not this run's to remove. It
// runs on a context of its own, so a run stopped by Ctrl-C still releases.
// Releasing twice is harmless.
func (l *RemoteLock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.etag == "" {
		return nil
	}
	ctx, cancel := detached()
	defer cancel()
	r := l.r
	_, err := r.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.loc.Bucket), Key: aws.String(r.lockKey()), IfMatch: aws.String(l.etag)})
	l.etag = ""
	switch {
	case err == nil, isNotFound(err):
		return nil
	case isPreconditionFailed(err):
		return fmt.Errorf("release lock %s: the lock object is no longer this run's (someone ran 'state unlock'); left it", r.lockKey())
	}
	return r.failure("release the lock of", "DeleteObject", err)
}
