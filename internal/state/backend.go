package state

import "context"

// Backend is the state at a Location: the local file (flock'd lock file,
// atomic rename) or one S3 object (lock object, conditional puts). A
// command opens it once and gets the same Store and lock either way; the
// stages only ever see the Store.
type Backend struct {
	loc    Location
	remote *Remote
	// Warnings are for stderr, once: remote state in a bucket without
	// versioning.
	Warnings []string
}

// Releaser is a held run lock, local or remote.
type Releaser interface{ Release() error }

// OpenBackend reaches loc. Local state needs nothing yet; remote state is
// checked as ConnectRemote does (bucket exists and may be used).
func OpenBackend(ctx context.Context, loc Location, version string) (*Backend, error) {
	b := &Backend{loc: loc}
	if !loc.Remote() {
		return b, nil
	}
	r, warnings, err := ConnectRemote(ctx, loc, version)
	if err != nil {
		return nil, err
	}
	b.remote, b.Warnings = r, warnings
	return b, nil
}

// Location is where the state lives.
func (b *Backend) Location() Location { return b.loc }

// Name is the location as messages show it: the path or the s3:// URL.
func (b *Backend) Name() string { return b.loc.String() }

// Remote is the S3 backend, nil for a local file.
func (b *Backend) Remote() *Remote { return b.remote }

// Lock takes the run lock. Local state is first checked to be writable, so
// that a run that could not record what it creates does not start.
func (b *Backend) Lock(ctx context.Context, command string) (Releaser, error) {
	// Each branch returns a nil interface on error, never a nil pointer in
	// a non-nil interface that the caller would release.
	if b.remote != nil {
		l, err := b.remote.Lock(ctx, command)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	if err := CheckWritable(b.loc.Path); err != nil {
		return nil, err
	}
	l, err := AcquireLock(b.loc.Path, command)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Open loads the state into a Store.
func (b *Backend) Open(ctx context.Context) (*Store, error) {
	if b.remote != nil {
		return OpenRemote(ctx, b.remote)
	}
	return Open(b.loc.Path)
}

// Load reads the state once, for commands that only read it.
func (b *Backend) Load(ctx context.Context) (*File, error) {
	if b.remote != nil {
		f, _, _, err := b.remote.Load(ctx)
		return f, err
	}
	return Load(b.loc.Path)
}
