# The two commands of the README. Both set the machine up first (idempotent).
PYTHON ?= python3
RUN_DIR ?= runs/demo
HYPERMOD_DIR ?= runs/hypermod
# Extra flags for both stages, e.g. HYPERMOD_ARGS="--gin_param=train.num_steps=300".
HYPERMOD_ARGS ?=
# The demo's train.precision (docs/TRAINING.md): auto is mixed_bfloat16 on a
# CPU with avx512_bf16 or amx_bf16 (the demo's step ran 1.5-1.6x faster there,
# at float32's quality), float32 elsewhere; PRECISION=float32 gives the
# float32 run of docs/RESULTS.md.
PRECISION ?= auto

.PHONY: setup demo hypermod test bazel-test

setup:
	bash tools/setup.sh

# The main job: transfer the shipped Fashion-MNIST source BigGAN to Bag and
# Ankle boot from 100 images each with cGANTransfer.
demo: setup
	TF_CPP_MIN_LOG_LEVEL=2 $(PYTHON) -m tfgt.train \
	  --gin_file=gin_configs/fashion_mnist/cgantransfer.gin \
	  --gin_file=gin_configs/fashion_mnist/trust_scores.gin --model_dir=$(RUN_DIR) \
	  --gin_param="train.precision='$(PRECISION)'"

# Hyper-Modulation end to end: self-align the shipped unconditional StyleGAN,
# then transfer it to Bag and Ankle boot (the demo's images). Both stages
# resume when the command is typed again.
hypermod: setup
	TF_CPP_MIN_LOG_LEVEL=2 $(PYTHON) -m tfgt.train \
	  --gin_file=gin_configs/fashion_mnist/hypermod_align.gin \
	  --model_dir=$(HYPERMOD_DIR)/align $(HYPERMOD_ARGS)
	TF_CPP_MIN_LOG_LEVEL=2 $(PYTHON) -m tfgt.train \
	  --gin_file=gin_configs/fashion_mnist/hypermod.gin \
	  --model_dir=$(HYPERMOD_DIR)/transfer \
	  --gin_param="ALIGNED='$(HYPERMOD_DIR)/align'" $(HYPERMOD_ARGS)

# The test suite, then a build of every Bazel target. The suite runs one
# worker per core (pytest-xdist), each test file on one worker, so that a
# file's shared runs are trained once, the longest files first
# (tests/conftest.py); the slowest tests are listed at the end, and
# TFGT_TEST_TIMES=times.json make test writes every file's seconds.
test:
	bash tools/setup.sh --bazel
	TF_CPP_MIN_LOG_LEVEL=2 $(PYTHON) -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=15
	bazel build //...; status=$$?; bazel shutdown; exit $$status

bazel-test:
	bash tools/setup.sh --bazel
	bash tools/bazel_test.sh
