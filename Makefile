# The three commands: `make up` runs the platform, `make test` runs every test, `make bench`
# runs the benchmarks and rewrites BENCHMARKS.md.
.PHONY: up test bench
up:
	scripts/up.sh
test:
	scripts/test.sh
bench:
	scripts/bench.sh
