package awsx

import (
	"context"
	"sort"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// CallCounter counts AWS API calls by "Service.Operation", split into reads
// and mutations. Tests use it to prove a second run changes nothing;
// benchmarks report it.
type CallCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

// NewCallCounter returns an empty counter.
func NewCallCounter() *CallCounter { return &CallCounter{calls: map[string]int{}} }

// Middleware registers the counter on a client's stack (pass it to
// LoadConfig or config.WithAPIOptions).
func (c *CallCounter) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("coderctlCallCounter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.add(awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx))
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

func (c *CallCounter) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
}

// IsRead reports whether an operation only reads.
func IsRead(op string) bool {
	name := op[strings.LastIndexByte(op, '.')+1:]
	for _, p := range []string{"Describe", "Get", "List", "Head", "Search", "Simulate", "Lookup"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Mutations returns the mutating calls made so far, sorted by name.
func (c *CallCounter) Mutations() []string { return c.filter(false) }

// Reads returns the read calls made so far, sorted by name.
func (c *CallCounter) Reads() []string { return c.filter(true) }

func (c *CallCounter) filter(reads bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for op, n := range c.calls {
		if IsRead(op) == reads {
			for range n {
				out = append(out, op)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Reset forgets every call.
func (c *CallCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = map[string]int{}
}
