# beat-ray: `make demo` and `make test` work on a fresh machine (Python 3.11, CPU or GPU).
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONHASHSEED := 0

.PHONY: install demo test lint bench figures clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build on CPU machines.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q "ray[default,tune,train]==2.60.0"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The main job: the data-efficiency study, smoke preset, on the embedded synth dataset (~2.5 min on 2 CPUs).
# It ends with its answer: the macro-AUC table with CIs and the path of the curve it drew
# (`python -m beat_ray.report --summary results/data_efficiency/smoke` prints it again).
# DEMO_ARGS passes extra flags, e.g. DEMO_ARGS="--storage-path /tmp/s --name demo2".
demo: install
	$(BIN)/python -m beat_ray.data prepare --dataset synth --fs 100 --n-records 2000
	$(BIN)/python experiments/data_efficiency.py --preset smoke $(DEMO_ARGS)

# Two phases: every test but the autoscaler ones in 2 processes (most of their time is Ray and subprocess
# start-up, not CPU), then the autoscaler tests alone: they `ray stop --force`, killing every Ray on the machine.
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15 -m "not autoscaler" tests
	$(BIN)/python -m pytest -q --durations=5 -m autoscaler tests

# Ruff with the rules in pyproject.toml; .ci/run runs it before the tests.
lint: install
	$(BIN)/ruff check .

# Every benchmark (A-D), make demo and make figures, one after another: benchmarks/report.{json,md}.
bench: install
	$(BIN)/python benchmarks/run_all.py

# Paper tables and figures of every preset with results (no Ray, no GPU): paper_figures/<preset>/.
figures: install
	$(BIN)/python -m beat_ray.report --all
	$(BIN)/python -m beat_ray.report --claims

clean:
	rm -rf $(VENV) .cache
