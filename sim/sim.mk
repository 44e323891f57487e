# The simulator (sim/), included by the root Makefile. Optimized with the `bench-opt`
# profile (release without LTO: quicker to build, as fast to run).
.PHONY: bench-policy sim-traces sim-test

BENCH_POLICY_ARGS ?=

bench-policy: ## every policy on every trace of sim/traces: Markdown table, goals, SVG charts in target/sim/ (BENCH_POLICY_ARGS="--seed 2 ...")
	cargo run -q --locked --profile bench-opt -p jibri-sim --bin bench-policy -- $(BENCH_POLICY_ARGS)

sim-traces: ## regenerate the bundled traces in sim/traces/ (seed 1)
	cargo run -q --locked --profile bench-opt -p jibri-sim --bin sim-traces

sim-test: ## the simulator's tests: invariants over random runs, bound, parser, determinism
	cargo test --locked -p jibri-sim
