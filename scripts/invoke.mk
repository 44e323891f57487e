# `make invoke-terminate`, `invoke-launch`, `invoke-warm-entry` and their `-sqs` / `-sns`
# forms: the termination guard under `cargo lambda watch`, invoked with the exact event of a
# real lifecycle action the local test bed begins on a recorder that is busy or idle
# (RECORDER=busy|idle, default busy). Uses the running test bed (`make testbed-up`), or
# starts one. The logic is in scripts/invoke.py; included by the repository's Makefile.

RECORDER ?= busy
INVOKE_FORMS := $(foreach kind,terminate launch warm-entry,invoke-$(kind)-sqs invoke-$(kind)-sns)

.PHONY: invoke-terminate invoke-launch invoke-warm-entry $(INVOKE_FORMS)

invoke-terminate: venv ## a terminate action (Terminating:Wait) on a RECORDER=busy|idle recorder, through the guard under cargo lambda; -sqs/-sns forms too
	$(PY) scripts/invoke.py terminate --recorder $(RECORDER)

invoke-launch: venv ## a launch action (Pending:Wait) whose Jibri answers RECORDER=busy|idle, through the guard under cargo lambda; -sqs/-sns forms too
	$(PY) scripts/invoke.py launch --recorder $(RECORDER)

invoke-warm-entry: venv ## a scale-in back into a warm pool (Warmed:Pending:Wait) of a RECORDER=busy|idle recorder, through the guard; -sqs/-sns forms too
	$(PY) scripts/invoke.py warm-entry --recorder $(RECORDER)

$(INVOKE_FORMS): venv
	$(PY) scripts/invoke.py $(patsubst invoke-%,%,$@) --recorder $(RECORDER)
