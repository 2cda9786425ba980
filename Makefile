# csg-lightning: `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_CLIPS ?= data/demo/clips
DEMO_SHARDS ?= data/demo/shards
PYTEST_ARGS ?=
EVAL_CKPT ?= runs/skeleton-demo/latest/checkpoints/last.ckpt
FGD_CKPT ?= runs/fgd-autoencoder/latest/checkpoints/last.ckpt

.PHONY: help setup test test-slow lint demo-data train-skeleton sample-skeleton train-video eval-skeleton bench

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing csg-lightning and its pinned stack into $(VENV) (about 1.5 min the first time)"
	@$(BIN)/pip install -q -e '.[dev]' 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project (re-installs only when pyproject.toml changed)

test: setup ## run the fast test suite (what CI runs)
	$(BIN)/python -m pytest -m "not slow" -q $(PYTEST_ARGS)

test-slow: setup ## run the slow tests (multi-process DDP, long runs)
	$(BIN)/python -m pytest -m slow -q $(PYTEST_ARGS)

lint: setup ## ruff over the package, tests and benchmarks
	$(BIN)/ruff check csg_lightning tests benchmarks

$(DEMO_SHARDS)/manifest.json: | setup
	$(BIN)/csg-data demo $(DEMO_CLIPS)
	$(BIN)/csg-data shard $(DEMO_CLIPS) $(DEMO_SHARDS)

demo-data: $(DEMO_SHARDS)/manifest.json ## generate the synthetic demo corpus and its shards (once)

train-skeleton: setup demo-data ## train the Stage-1 skeleton diffusion demo (CPU, minutes)
	$(BIN)/csg fit --config experiments/skeleton/demo.yaml $(ARGS)

sample-skeleton: setup ## CKPT=... AUDIO=any.wav [REF=ref.npz] OUT=out.mp4: skeleton video + .npz
	@test -n "$(CKPT)" -a -n "$(AUDIO)" -a -n "$(OUT)" || { echo "usage: make sample-skeleton CKPT=runs/skeleton-demo/latest/checkpoints/last.ckpt AUDIO=speech.wav OUT=out.mp4 [REF=ref.npz]"; exit 2; }
	$(BIN)/python -m csg_lightning.generation.sample_skeleton --ckpt "$(CKPT)" --audio "$(AUDIO)" --out "$(OUT)" $(if $(REF),--ref "$(REF)")

eval-skeleton: setup demo-data ## score EVAL_CKPT (default: latest demo run) and baselines -> runs/eval/skeleton-demo/
	@test -f "$(EVAL_CKPT)" || { echo "no $(EVAL_CKPT): run 'make train-skeleton' first (or pass EVAL_CKPT=...)"; exit 2; }
	@test -f "$(FGD_CKPT)" || $(BIN)/csg fit --config experiments/eval/fgd_autoencoder.yaml --run demo
	$(BIN)/csg-eval skeleton --ckpt "$(EVAL_CKPT)" --data $(DEMO_SHARDS) --fgd-ckpt "$(FGD_CKPT)" --run skeleton-demo

train-video: setup demo-data ## train the Stage-2 pose-guided video generator demo (tiny parts, CPU, minutes)
	$(BIN)/csg fit --config experiments/video/demo.yaml $(ARGS)

bench: setup demo-data ## benchmarks: dataloader, skeleton model, pose drawing (one JSON line each)
	$(BIN)/python benchmarks/bench_dataloader.py
	$(BIN)/python benchmarks/bench_skeleton.py
	$(BIN)/python benchmarks/bench_pose_drawing.py
	$(BIN)/python benchmarks/bench_video.py
