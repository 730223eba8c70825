package helmx

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// progressInterval is how often a waiting Apply repeats what it waits for
// when nothing changed, so a TTY shows the wait is alive.
const progressInterval = 10 * time.Second

// waitReporter turns helm's wait log ("Deployment is not ready: coder/coder.
// 0 out of 2 expected pods are ready") into progress lines: at once when
// the message changes, and every progressInterval otherwise. Everything
// else helm logs goes to the client's log.
type waitReporter struct {
	release  string
	timeout  time.Duration
	progress func(string)
	log      func(string)

	mu      sync.Mutex
	started time.Time
	waiting bool
	last    string // latest "not ready" message
}

func newWaitReporter(rel Release, progress func(string), log func(string)) *waitReporter {
	return &waitReporter{
		release:  rel.Namespace + "/" + rel.Name,
		timeout:  timeout(rel),
		progress: progress,
		log:      log,
	}
}

// start announces the wait and repeats its status until stop is called.
func (w *waitReporter) start(ctx context.Context) (stop func()) {
	w.mu.Lock()
	w.started = time.Now()
	w.waiting = true
	w.mu.Unlock()
	w.emit(fmt.Sprintf("release %s: applying, then waiting up to %s for its resources to be ready", w.release, w.timeout))

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(progressInterval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				w.emit(w.status())
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		w.mu.Lock()
		w.waiting = false
		w.mu.Unlock()
	}
}

func (w *waitReporter) status() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	what := w.last
	if what == "" {
		what = "waiting for its resources to be ready"
	}
	return fmt.Sprintf("release %s: %s (%s elapsed)", w.release, what, time.Since(w.started).Round(time.Second))
}

// debugLog is helm's DebugLog for the action.
func (w *waitReporter) debugLog(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.log(msg)
	if !isWaitMessage(msg) {
		return
	}
	w.mu.Lock()
	changed := w.waiting && msg != w.last
	w.last = msg
	w.mu.Unlock()
	if changed {
		w.emit(w.status())
	}
}

func (w *waitReporter) emit(msg string) {
	if w.progress != nil {
		w.progress(msg)
	}
}

// isWaitMessage matches the readiness lines of helm's waiter (pkg/kube
// ready.go), e.g. "DaemonSet is not ready: ..." or "Service does not have
// load balancer ingress IP address: ...".
func isWaitMessage(msg string) bool {
	return strings.Contains(msg, " is not ready: ") ||
		strings.Contains(msg, " does not have ") ||
		strings.Contains(msg, " is not bound: ") ||
		strings.Contains(msg, " is not completed: ")
}
