# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install system data demo test lint bench messages clean

# The environment is rebuilt when pyproject.toml or constraints.txt changes; torch and
# torchvision come from the versions constraints.txt pins (the package asks only for ranges).
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,cluster]'
	touch $@

install: $(VENV)/.installed system

# bubblewrap runs the students' notebooks, as an unprivileged user when the grader is root
# (and libseccomp filters their system calls); as root they are installed here, otherwise
# say how. Slurm and munge serve the tests of `--cluster slurm`, which start their own
# one-node cluster (tests/slurm_cluster.py); nothing of the system's Slurm is configured.
SANDBOX_USER ?= torchgrade-sandbox

system:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && apt-get install -y -qq bubblewrap; } || \
	  echo "bubblewrap missing: run 'sudo apt-get install bubblewrap' (sandbox tests will skip)"
	@ldconfig -p | grep -q libseccomp.so.2 || { [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && apt-get install -y -qq libseccomp2; } || \
	  echo "libseccomp missing: run 'sudo apt-get install libseccomp2' (no seccomp filter)"
	@[ "$$(id -u)" != 0 ] || id -u $(SANDBOX_USER) >/dev/null 2>&1 || \
	  useradd --system --no-create-home --home-dir /nonexistent \
	    --shell /usr/sbin/nologin $(SANDBOX_USER)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && apt-get install -y -qq chromium; } || \
	  echo "chromium missing: run 'sudo apt-get install chromium' (browser tests will skip)"
	@{ [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && [ -x /usr/sbin/munged ]; } || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    apt-get install -y -qq slurmctld slurmd munge; } || \
	  echo "Slurm missing: run 'sudo apt-get install slurmctld slurmd munge' (slurm tests will skip)"

data: install
	$(BIN)/grade data fetch

demo: data
	$(BIN)/grade list
	$(BIN)/grade submissions/ --hw W4 --out grades
	$(BIN)/grade submissions/ --hw W5_Save_Model --out grades
	$(BIN)/grade submissions/ --hw W6 --out grades
	$(BIN)/grade publish --gradebook grades --out site
	$(BIN)/python bench/reference_figures.py --quick

# Every message the grader says (N_() and say() in grader/, _() and {% trans %} in the report's
# templates) into grader/locale/torchgrade.pot, the template a translator starts from; the
# Chinese lives in grader/locale/zh/*.po, and tests/test_i18n.py names any message it lacks.
messages: install
	$(BIN)/pybabel -q extract -F grader/locale/babel.cfg -k N_ -k say \
	  -o grader/locale/torchgrade.pot .

lint: install
	$(BIN)/ruff check grader reference tests bench assignments

test: lint
	$(BIN)/python -m pytest

bench: data
	$(BIN)/python bench/reference_figures.py
	$(BIN)/python bench/minibatch_epoch.py
	$(BIN)/python bench/sandbox_overhead.py
	$(BIN)/python bench/report_render.py
	$(BIN)/python bench/grading_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
