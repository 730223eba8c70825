# make bench: coderctl measured against its performance targets (cmd/bench).
# Not part of `make test`. Starts the proving ground behind the realistic
# AWS profile scaled by BENCH_SCALE, runs up, verify, a second up, a one-minor
# EKS upgrade and down, times
# start-up, runs the Go benchmarks, prints a table (figure, value, target,
# ok/over) and writes every figure to bench/results.json. Targets are
# reported, never asserted. Included from the Makefile (bench is .PHONY there).

# 1/50: EKS's 13 minutes take 15.6 s, so the AWS waits stand to the ground's
# local helm work roughly as they do on real AWS; the whole bench takes ~2.5 min.
BENCH_SCALE ?= 0.02
BENCH_OUT   ?= bench/results.json
# Extra flags for bin/bench, e.g. BENCH_FLAGS='-runs 50 -keep'.
BENCH_FLAGS ?=

bench: build ground-prereqs
	$(GO) build -o bin/bench ./cmd/bench
	bin/bench -coderctl $(BIN) -go $(GO) -scale $(BENCH_SCALE) -out $(BENCH_OUT) $(BENCH_FLAGS)
