"""Sweeps: every sweep YAML validates and expands, its commands parse through the real `csg` parser, bad
sweeps are refused naming file and field, `${args}` renders as the W&B agent renders it, `make sweep`
prints the wandb commands, the report averages over seeds, and (slow) `csg sweep --local` trains four
tiny trials two at a time, skips them on a re-run and `csg sweep-report` tabulates them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from experiment_catalog import ROOT, TINY_SKELETON_MODEL, leaves, of_kind

from csg_lightning.sweeps.expand import expand, render_args, trial_command
from csg_lightning.sweeps.local_runner import MARKER, plan, predict_run_dir
from csg_lightning.sweeps.report import collect, write_sweep_report
from csg_lightning.sweeps.sweep_spec import SweepError, load_sweep

SWEEPS = ROOT / "experiments" / "sweeps"
ABLATION_SLOTS = {"config.fusion", "config.local", "config.prefix", "config.target"}


def _id(path: Path) -> str:
    return path.stem


@pytest.mark.parametrize("path", of_kind("sweep"), ids=_id)
def test_every_sweep_yaml_validates_and_expands(path):
    spec = load_sweep(path, ROOT)
    assert spec.command.count("${args}") == 1 and spec.metric["name"] == "val/loss"
    trials = expand(spec, seed=0)
    assert trials and len({repr(t.params) for t in trials}) == len(trials), "repeated trials"
    for trial in trials[:3]:
        command = trial_command(spec, trial.params)
        assert command[:2] == ["csg", "fit"] and all(a.startswith("--") for a in render_args(trial.params))


@pytest.mark.parametrize("recipe", ["demo", "csg405"])
def test_the_papers_ablation_grid_is_there_for_both_recipes(recipe):
    spec = load_sweep(SWEEPS / f"ablations-{recipe}.yaml", ROOT)
    assert spec.method == "grid" and f"experiments/skeleton/{recipe}.yaml" in spec.command
    assert ABLATION_SLOTS <= set(spec.parameters) and spec.parameters["seed"]["values"] == [0, 1, 2]
    overlays = {Path(v).stem for k in ABLATION_SLOTS for v in spec.parameters[k]["values"] if v != "none"}
    assert overlays == {"fusion_cross_attention", "no_local_representation", "no_reference_prefix",
                        "target_epsilon", "target_v_prediction"}  # fmt: skip
    trials = expand(spec)
    assert len(trials) == 2 * 2 * 2 * 3 * 3
    assert [t.params["seed"] for t in trials[:3]] == [0, 1, 2], "seed varies fastest: a cut grid keeps whole configs"


def _covering(trials) -> list:
    """The fewest trials that together show every value of every parameter."""
    picked, seen = [], set()
    for trial in trials:
        new = {(k, repr(v)) for k, v in trial.trial.params.items()} - seen
        if new:
            picked.append(trial)
            seen |= new
    return picked


def _print_config(argv: list[str]) -> dict:
    from csg_lightning.cli import run

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        run([*argv, "--print_config"])
    assert stop.value.code in (0, None), out.getvalue()[-2000:]
    return yaml.safe_load(out.getvalue())


@pytest.mark.parametrize("path", of_kind("sweep"), ids=_id)
def test_expanded_commands_parse_through_the_real_csg_parser(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # sweeps run from the repository root
    spec = load_sweep(path, ROOT)
    for p in _covering(plan(spec, expand(spec, seed=0), [])):
        config = _print_config(p.argv)
        for key, value in p.trial.params.items():
            if key == "seed":
                assert config["seed"] == value
            elif key.startswith("config.") and value != "none":  # the overlay's keys are in the parsed config
                for keys, expected in leaves({k: v for k, v in yaml.safe_load((ROOT / value).read_text()).items()
                                               if k != "overlay"}):  # fmt: skip
                    node = config
                    for k in keys:
                        node = node[k]
                    if not (isinstance(expected, str) and expected.endswith(".yaml")):
                        assert node == expected, (value, keys)
            elif not key.startswith("config."):
                node = config
                for k in key.split("."):
                    node = node[k]
                assert node == pytest.approx(value), key
        overlays = [yaml.safe_load((ROOT / v).read_text())["overlay"] for k, v in p.trial.params.items()
                    if k.startswith("config.") and v != "none"]  # fmt: skip
        assert p.run_dir.parent.name == "+".join([config["experiment"], *overlays, f"seed{p.trial.params['seed']}"])


def test_args_render_as_the_wandb_agent_renders_them():
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    params = {"config.fusion": "experiments/skeleton/ablations/fusion_cross_attention.yaml", "seed": 2,
              "model.init_args.optimizer.init_args.lr": 3.5e-05, "model.init_args.use_prefix": False}  # fmt: skip
    agent = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    assert render_args(params) == agent["args"]
    assert agent["args_no_hyphens"][1] == "seed=2"  # what Hydra would get: LightningCLI needs the hyphens


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


GOOD = """program: csg
method: grid
metric: {name: val/loss, goal: minimize}
command: ["${env}", csg, fit, --config, experiments/skeleton/demo.yaml, "${args}"]
parameters:
  config.target: {values: [none, experiments/skeleton/ablations/target_epsilon.yaml]}
  seed: {values: [0, 1]}
"""


@pytest.mark.parametrize("change, field, words", [
    (('"${args}"]', '"${args_no_hyphens}"]'), "command", "Hydra"),
    (("target_epsilon.yaml", "target_nothing.yaml"), "parameters.config.target", "not found"),
    (("experiments/skeleton/ablations/target_epsilon.yaml", "experiments/skeleton/demo.yaml"),
     "parameters.config.target", "not an overlay"),
    (("values: [0, 1]", "values: [0, 1.5]"), "parameters.seed", "integers"),
    (("method: grid", "method: hyperband"), "method", "grid"),
    (("method: grid\n", ""), "method", "missing"),
    (("seed: {values: [0, 1]}", "seed: {distribution: uniform, min: 0, max: 1}"), "parameters.seed", "grid"),
    (("goal: minimize", "goal: lower"), "metric.goal", "minimize or maximize"),
    (("csg, fit", "python, train.py"), "command", "csg fit"),
    (("program: csg", "program: csg\nprogramme: x"), "top level", "programme"),
    (("seed: {values: [0, 1]}", "seed: {values: [0, 1], probabilities: [0.2, 0.2]}"), "parameters.seed.probabilities", "summing"),
])  # fmt: skip
def test_bad_sweeps_are_refused_naming_file_and_field(tmp_path, change, field, words):
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(SweepError) as err:
        load_sweep(path, ROOT)
    assert str(path) in str(err.value) and f": {field}:" in str(err.value) and words in str(err.value), str(err.value)
    load_sweep(_write(tmp_path, GOOD), ROOT)  # the unchanged sweep is fine


def test_yaml_syntax_error_names_the_line(tmp_path):
    with pytest.raises(SweepError, match=r"bad.yaml: line 3"):
        load_sweep(_write(tmp_path, "program: csg\nmethod: grid\nparameters: a: b\n"), ROOT)


def test_random_sweeps_are_reproducible_and_in_range():
    spec = load_sweep(SWEEPS / "lr-demo.yaml", ROOT)
    a, b, c = expand(spec, seed=0), expand(spec, seed=0), expand(spec, seed=1)
    assert len(a) == spec.run_cap == 8 and a == b and a != c
    lrs = [t.params["model.init_args.optimizer.init_args.lr"] for t in a]
    assert all(1e-4 <= lr <= 2e-3 for lr in lrs) and len(set(lrs)) == 8
    assert expand(spec, max_trials=3) == a[:3]
    with pytest.raises(SweepError, match="--max-trials"):
        expand(spec, max_trials=0)


def test_run_folders_are_named_after_overlays_seed_and_hyper_parameters(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    spec = load_sweep(SWEEPS / "ablations-demo.yaml", ROOT)
    planned = plan(spec, expand(spec), [f"--runs_root={tmp_path}"])
    dirs = [p.run_dir for p in planned]
    assert len(set(dirs)) == 72
    assert dirs[0] == tmp_path / "skeleton-demo+seed0" / "ablations-demo"
    assert tmp_path / "skeleton-demo+fusion_cross_attention+no_local_representation+no_reference_prefix" \
        "+target_v_prediction+seed2" / "ablations-demo" in dirs
    assert {p.label for p in planned[:3]} == {"skeleton-demo"}
    lr = load_sweep(SWEEPS / "lr-demo.yaml", ROOT)
    lr_plan = plan(lr, expand(lr), [])
    assert len({p.run_dir for p in lr_plan}) == 8 and all(p.run_dir.parent.name == "skeleton-demo+seed0" for p in lr_plan)
    assert predict_run_dir(["--config", "experiments/skeleton/demo.yaml", "--experiment=x", "--run=r"]) == Path("runs/x/r")


def test_sweep_cli_without_local_prints_the_agent_commands(capsys, tmp_path, monkeypatch):
    from csg_lightning.sweeps.sweep_cli import main

    monkeypatch.chdir(ROOT)
    main(["experiments/sweeps/ablations-csg405.yaml"])
    out = capsys.readouterr().out
    assert "72 trial(s)" in out and "wandb sweep experiments/sweeps/ablations-csg405.yaml" in out
    assert "wandb agent --count 1" in out and "--config.fusion=none" in out and "... 69 more" in out
    with pytest.raises(SystemExit, match="parameters.seed"):
        main([str(_write(tmp_path, GOOD.replace("values: [0, 1]", "values: [zero]")))])


def test_make_sweep_creates_the_sweep_with_wandb_and_prints_the_agent_command():
    out = subprocess.run(["make", "-n", "sweep", "SWEEP=experiments/sweeps/ablations-demo.yaml"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert '.venv/bin/csg sweep "experiments/sweeps/ablations-demo.yaml"' in out  # checked before the server sees it
    assert '.venv/bin/wandb sweep "experiments/sweeps/ablations-demo.yaml"' in out
    assert "launchers/agents_per_gpu.sh" in out and "launchers/slurm/sweep_array.sbatch" in out
    usage = subprocess.run(["make", "-s", "sweep"], cwd=ROOT, capture_output=True, text=True)
    assert usage.returncode != 0 and "usage: make sweep SWEEP=" in usage.stdout


def _trial_folder(root: Path, name: str, seed: int, label: str, val_loss: float, index: int) -> Path:
    run = root / f"{name}+seed{seed}" / "s"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"metrics": {"val/loss": val_loss, "train/loss": 1.0}}))
    (run / MARKER).write_text(json.dumps({"sweep": "s", "label": label, "index": index, "params": {"seed": seed}}))
    return run


def test_report_averages_over_seeds_and_picks_up_evaluations(tmp_path):
    from csg_lightning.sweeps.report_cli import main

    runs = tmp_path / "runs"
    for i, (seed, loss) in enumerate([(0, 1.0), (1, 2.0), (2, 3.0)]):
        _trial_folder(runs, "skeleton-demo", seed, "skeleton-demo", loss, i)
    eps = _trial_folder(runs, "skeleton-demo+target_epsilon", 0, "skeleton-demo+target_epsilon", 0.5, 3)
    (runs / "skeleton-demo+seed9" / "other").mkdir(parents=True)  # a run of another sweep
    (runs / "skeleton-demo+seed9" / "other" / MARKER).write_text(json.dumps({"sweep": "t", "label": "x"}))
    evals = tmp_path / "eval" / "e1"  # a csg-eval report of the epsilon trial's checkpoint
    evals.mkdir(parents=True)
    (evals / "report.json").write_text(json.dumps({"model": {"FGD": 4.5, "BC": 0.25}, "ground_truth": {"FGD": 0.0},
                                                   "meta": {"checkpoint": str(eps / "checkpoints" / "last.ckpt")}}))  # fmt: skip
    trials = collect([runs], sweep="s", eval_roots=[tmp_path / "eval"])
    assert [t.seed for t in trials] == [0, 1, 2, 0] and trials[3].metrics["FGD"] == 4.5
    table = write_sweep_report(tmp_path / "out", trials)
    assert "| skeleton-demo | 3 (0,1,2) | 2 ± 1 |" in table  # mean 2, sample std 1
    assert "| skeleton-demo+target_epsilon | 1 (0) | **0.5** | 4.5 | 0.25 |" in table
    rows = list(__import__("csv").DictReader((tmp_path / "out" / "sweep-report.csv").open()))
    assert rows[0]["val/loss mean"] == "2.0" and rows[0]["val/loss std"] == "1.0" and rows[1]["FGD mean"] == "4.5"
    assert (tmp_path / "out" / "sweep-report.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit, match="no trials of sweep nope"):
        main([str(runs), "--sweep", "nope"])
    with pytest.raises(SystemExit, match="no such run folder"):
        main([str(tmp_path / "missing")])


def _csg(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    csg = Path(sys.executable).parent / "csg"
    return subprocess.run([str(csg), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})  # fmt: skip


def tiny_trial_args(shards: Path, runs: Path) -> list[str]:
    """Extra `csg fit` arguments that make every trial of a demo sweep a one-step tiny fit in ``runs``."""
    return [f"--data.init_args.data_dir={shards}", "--data.init_args.batch_size=2", "--data.init_args.window=50",
            "--data.init_args.num_prefix=10", *TINY_SKELETON_MODEL, "--model.init_args.crossfade_frames=5",
            "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto",
            "--trainer.max_steps=1", "--trainer.val_check_interval=1", "--trainer.limit_val_batches=1",
            "--torch_threads=1", f"--runs_root={runs}"]  # fmt: skip


@pytest.mark.slow
def test_local_sweep_runs_four_trials_skips_them_on_rerun_and_reports(demo_shards, tmp_path):
    runs = tmp_path / "runs"
    sweep = "experiments/sweeps/ablations-demo.yaml"
    args = ["sweep", sweep, "--local", "--max-trials", "4", "--parallel", "2", "--", *tiny_trial_args(demo_shards, runs)]
    began = time.monotonic()
    first = _csg(*args, env={"WANDB_MODE": "offline"})
    seconds = time.monotonic() - began
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "4 done, 0 skipped" in first.stdout
    expected = [runs / f"skeleton-demo+seed{s}" / "ablations-demo" for s in (0, 1, 2)]
    expected.append(runs / "skeleton-demo+target_epsilon+seed0" / "ablations-demo")
    for run_dir in expected:
        marker = json.loads((run_dir / MARKER).read_text())
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert saved["seed_everything"] == marker["params"]["seed"] and saved["run"] == "ablations-demo"
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert list((run_dir / "wandb").glob("offline-run-*")), "W&B did not run offline"
    eps = yaml.safe_load((expected[3] / "config.yaml").read_text())
    assert eps["model"]["init_args"]["diffusion"]["init_args"]["prediction_type"] == "epsilon"
    again = _csg(*args)
    assert again.returncode == 0 and "0 done, 4 skipped" in again.stdout, again.stdout[-2000:]
    report = _csg("sweep-report", str(runs), "--sweep", "ablations-demo")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "| skeleton-demo | 3 (0,1,2) |" in report.stdout and "| skeleton-demo+target_epsilon | 1 (0) |" in report.stdout
    out = runs / "sweep-report-ablations-demo"
    assert {p.name for p in out.iterdir()} >= {"sweep-report.md", "sweep-report.csv", "sweep-trials.csv", "sweep-report.png"}
    print(f"4 trials, 2 at a time: {seconds:.0f} s\n{report.stdout}")
