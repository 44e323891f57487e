# The simulator (sim/), included by the root Makefile. Optimized with the `bench-opt`
# profile (release without LTO: quicker to build, as fast to run).
.PHONY: bench-policy bench-policy-seeds sim-traces sim-test

BENCH_POLICY_ARGS ?=

bench-policy: ## every policy on every trace of sim/traces: Markdown table, goals, SVG charts in target/sim/ (BENCH_POLICY_ARGS="--seed 2 ...")
	cargo run -q --locked --profile bench-opt -p jibri-sim --bin bench-policy -- $(BENCH_POLICY_ARGS)

BENCH_SEEDS ?= 2 3 4 5 6 7
BENCH_NIGHTS ?= 100-129

bench-policy-seeds: ## issue 15's goals beyond the bundled traces: seeds $(BENCH_SEEDS) (sim-traces --seed N) and the held-out traces of sim/heldout/gen.py (nights $(BENCH_NIGHTS)); tables in target/sim/, ~6 min (BENCH_POLICY_ARGS="--set SPARE_PROBABILITY=0.995" goes to every run)
	cargo build -q --locked --profile bench-opt -p jibri-sim --bin bench-policy --bin sim-traces
	@set -e; run() { cargo run -q --locked --profile bench-opt -p jibri-sim --bin "$$@"; }; \
	clauses() { sed -n 's/^- \([^:]*\): .*; issue 15, \([^;]*\).*/- \1: \2/p' "$$1"; }; \
	for n in $(BENCH_SEEDS); do d=target/sim/seed-$$n; rm -rf "$$d"; \
	  run sim-traces -- $$d --seed $$n >/dev/null; \
	  run bench-policy -- $(BENCH_POLICY_ARGS) --traces $$d --seed $$n --out $$d/out > $$d/table.md 2>/dev/null; \
	  echo "## seed $$n ($$d/table.md)"; clauses $$d/table.md; \
	done; \
	d=target/sim/heldout; rm -rf "$$d"; $(PYTHON) sim/heldout/gen.py $$d; $(PYTHON) sim/heldout/gen.py $$d/nights --nights $(BENCH_NIGHTS); \
	run bench-policy -- $(BENCH_POLICY_ARGS) --traces $$d --history none --out $$d/out > $$d/table.md 2>/dev/null; \
	echo "## held-out ($$d/table.md)"; clauses $$d/table.md; \
	run bench-policy -- $(BENCH_POLICY_ARGS) --traces $$d/nights --history none --out $$d/nights/out > $$d/nights/table.md 2>/dev/null; \
	echo "## held-out nights $(BENCH_NIGHTS) ($$d/nights/table.md)"; $(PYTHON) sim/heldout/sum.py $$d/nights/table.md | grep -v '^night-'

sim-traces: ## regenerate the bundled traces in sim/traces/ (seed 1)
	cargo run -q --locked --profile bench-opt -p jibri-sim --bin sim-traces

sim-test: ## the simulator's tests: invariants over random runs, bound, parser, determinism
	cargo test --locked -p jibri-sim
