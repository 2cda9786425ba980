# csg-lightning: `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Optional extras installed beside base + dev (e.g. CSG_EXTRAS=pose: `make setup-pose`). The set a venv was
# synced with is recorded in $(EXTRAS_FILE), so a later plain `make setup` keeps it; `make setup CSG_EXTRAS=`
# goes back to base + dev. The stamp's name carries the set: a different set re-syncs.
EXTRAS_FILE := $(VENV)/.csg-extras
CSG_EXTRAS ?= $(shell cat $(EXTRAS_FILE) 2>/dev/null)
EXTRAS := $(sort $(filter-out dev,$(CSG_EXTRAS)))
empty :=
STAMP := $(VENV)/.installed-$(subst $(empty) $(empty),+,$(strip dev $(EXTRAS)))
DEMO_CLIPS ?= data/demo/clips
DEMO_SHARDS ?= data/demo/shards
PYTEST_ARGS ?=
EVAL_CKPT ?= runs/skeleton-demo/latest/checkpoints/last.ckpt
FGD_CKPT ?= runs/fgd-autoencoder/latest/checkpoints/last.ckpt
VAE_CKPT := runs/vae-demo/latest/checkpoints/last.ckpt
# make demo: the test speaker of the demo shards (spk04, whom no model sees in training) and where it writes.
DEMO_CLIP ?= $(DEMO_CLIPS)/spk04_clip000
DEMO_OUT ?= runs/demo
# make demo shortens the trainings so the chain fits 25 min on 2 CPU cores (the recipes alone: 10 + 4 + 8 min) and
# scores the first 2 test clips (csg-eval video-demo --clips 4 scores all 4).
DEMO_SKELETON_ARGS ?= --trainer.max_time 00:00:05:30
DEMO_VAE_ARGS ?= --trainer.max_time 00:00:03:00
DEMO_VIDEO_ARGS ?= --trainer.max_time 00:00:07:00
DEMO_EVAL_ARGS ?= --clips 2

.PHONY: help setup setup-pose lock test test-slow lint demo demo-data train-skeleton sample-skeleton train-video train-video-tiny train-vae eval-skeleton bench generate

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

UV_DIR ?= .uv
UV := $(UV_DIR)/bin/uv
# uv never downloads a Python of its own here: it builds $(VENV) with $(PYTHON).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

$(UV): requirements/uv.txt
	@test -x $(UV_DIR)/bin/python || $(PYTHON) -m venv $(UV_DIR)
	@$(UV_DIR)/bin/pip install -q --require-hashes -r requirements/uv.txt 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
	@touch $(UV)

$(STAMP): pyproject.toml uv.lock $(UV)
	@echo "installing csg-lightning and its locked stack (uv.lock) into $(VENV), extras: dev $(EXTRAS) (about 1 min the first time$(if $(filter pose,$(EXTRAS)),; the pose extra compiles mmcv once: about 10 min on 2 cores))"
	@$(UV) sync --frozen --extra dev $(addprefix --extra ,$(EXTRAS)) --python $(PYTHON) --quiet
	@rm -f $(VENV)/.installed-stamp $(VENV)/.installed-dev*
	@echo "$(EXTRAS)" > $(EXTRAS_FILE)
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install exactly what uv.lock says, with the venv's recorded extras (re-syncs when pyproject.toml or uv.lock changed)

setup-pose: ## setup plus the mmpose backend's extra (mmcv/mmdet/mmpose; builds mmcv once); later `make setup` keeps it
	@$(MAKE) --no-print-directory setup CSG_EXTRAS="$(sort $(EXTRAS) pose)"

lock: $(UV) ## re-resolve the dependencies of pyproject.toml and rewrite uv.lock (after editing the dependencies)
	$(UV) lock --python $(PYTHON)
	@echo "uv.lock rewritten: run 'make setup test' and commit pyproject.toml + uv.lock together"

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

train-vae: setup demo-data ## fit the demo's VAE on rendered synthetic speakers (CPU, ~4 min)
	$(BIN)/csg fit --config experiments/video/vae_demo.yaml $(ARGS)

$(VAE_CKPT): | setup demo-data
	$(BIN)/csg fit --config experiments/video/vae_demo.yaml

train-video: setup demo-data $(VAE_CKPT) ## train the Stage-2 pose-guided video generator demo on the fitted VAE (fits it first if missing; CPU, 8 min)
	$(BIN)/csg fit --config experiments/video/demo_person.yaml $(ARGS)

train-video-tiny: setup demo-data ## Stage 2 on tiny random frozen parts (proves the training path; draws no person)
	$(BIN)/csg fit --config experiments/video/demo.yaml $(ARGS)

demo: setup demo-data ## the whole demo from nothing: Stage 1, VAE, Stage 2, then a held-out speaker's video + scores (2 CPU cores: see README)
	$(BIN)/csg fit --config experiments/skeleton/demo_speakers.yaml $(DEMO_SKELETON_ARGS)
	$(BIN)/csg fit --config experiments/video/vae_demo.yaml $(DEMO_VAE_ARGS)
	$(BIN)/csg fit --config experiments/video/demo_person.yaml $(DEMO_VIDEO_ARGS)
	$(BIN)/csg-data still $(DEMO_CLIP)/video.mp4 $(DEMO_OUT)/photo.png
	$(BIN)/csg generate --pipeline experiments/pipeline/demo.yaml --audio $(DEMO_CLIP)/audio.wav --photo $(DEMO_OUT)/photo.png --reference-pose $(DEMO_CLIP)/pose.npz --out $(DEMO_OUT)/demo.mp4
	$(BIN)/csg-eval video-demo --skeleton-ckpt runs/skeleton-demo/latest/checkpoints/last.ckpt --video-ckpt runs/video-demo/latest/checkpoints/last.ckpt --data $(DEMO_SHARDS) --out $(DEMO_OUT)/eval $(DEMO_EVAL_ARGS)
	@echo "demo video: $(DEMO_OUT)/demo.mp4 (photo and audio: $(DEMO_CLIP)); scores and side-by-side videos: $(DEMO_OUT)/eval/report.md"

.PHONY: sweep
sweep: setup ## SWEEP=experiments/sweeps/X.yaml: check it, create the W&B sweep (wandb sweep; a server needed) and print the agent command
	@test -n "$(SWEEP)" || { echo "usage: make sweep SWEEP=experiments/sweeps/ablations-demo.yaml  (no server: csg sweep SWEEP --local)"; exit 2; }
	$(BIN)/csg sweep "$(SWEEP)"
	$(BIN)/wandb sweep "$(SWEEP)"
	@echo "agents: launchers/agents_per_gpu.sh ENTITY/PROJECT/SWEEP_ID | sbatch --array=0-N launchers/slurm/sweep_array.sbatch ENTITY/PROJECT/SWEEP_ID"

bench: setup demo-data ## benchmarks: dataloader, skeleton model, pose drawing (one JSON line each)
	$(BIN)/python benchmarks/bench_dataloader.py
	$(BIN)/python benchmarks/bench_vs_release.py $(if $(REFCSG),--refcsg "$(REFCSG)",--ours-only) --quick
	$(BIN)/python benchmarks/bench_pose_drawing.py
	$(BIN)/python benchmarks/bench_video.py

generate: setup ## AUDIO=speech.wav PHOTO=person.png OUT=out.mp4 [REF=ref.npz] [PIPELINE=experiments/pipeline/demo.yaml]
	@test -n "$(AUDIO)" -a -n "$(PHOTO)" -a -n "$(OUT)" || { echo "usage: make generate AUDIO=speech.wav PHOTO=person.png OUT=out.mp4 [REF=ref.npz] [PIPELINE=...]"; exit 2; }
	$(BIN)/csg generate --pipeline "$(or $(PIPELINE),experiments/pipeline/demo.yaml)" --audio "$(AUDIO)" --photo "$(PHOTO)" --out "$(OUT)" $(if $(REF),--reference-pose "$(REF)") $(ARGS)
