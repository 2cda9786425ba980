"""Every YAML under experiments/ and callbacks/ is tested: found by glob (tests/experiment_catalog.py), so a
new file cannot go untested.

* every recipe trains a step through the real `csg` CLI (tiny overrides: sizes, CPU, fp32 only; the classes,
  loggers, callbacks and data paths are the ones the YAML names); the video recipes in
  tests/test_video_experiments.py;
* every overlay stacked on every recipe of its stage trains a step (the run is named after both);
* two overlays + ``--seed`` stack and name the run after all of them;
* every layer, callback config and component is reached from a recipe or validated on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml
from experiment_catalog import (
    ROOT,
    TINY_SKELETON_MODEL,
    all_yamls,
    bases_of,
    check_class_fragment,
    data_class,
    kind,
    leaves,
    load,
    model_class,
    of_kind,
    reachable_from_recipes,
)

from csg_lightning.cli import run

SKELETON = ROOT / "experiments" / "skeleton"
CPU = [
    "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.precision=32-true",
    "--trainer.max_steps=1", "--trainer.val_check_interval=1", "--trainer.limit_val_batches=1",
]  # fmt: skip
TESTED_ELSEWHERE = {"VideoGenerator": "tests/test_video_experiments.py", "VAEAutoencoder": "tests/test_vae_autoencoder.py"}


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT / "experiments")).removesuffix(".yaml")


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("wav2vec2") / "wav2vec2-base-960h"
    Wav2Vec2Model(config).save_pretrained(path)
    return path


def _tiny_overrides(recipe: Path, shards: Path) -> list[str]:
    """The size overrides for ``recipe``'s model class (an unknown class fails: add its overrides here)."""
    data = [
        f"--data.init_args.data_dir={shards}", "--data.init_args.batch_size=2", "--data.init_args.num_workers=0",
        "--data.init_args.window=50", "--data.init_args.num_prefix=10",
    ]  # fmt: skip
    if data_class(recipe) == "GeneratedSkeletonAudioDataModule":  # in-memory speakers: 2 short ones, no workers
        data = [a for a in data if not a.startswith("--data.init_args.num_workers=")]
        data += ["--data.init_args.num_speakers=2", "--data.init_args.clip_seconds=4.0"]
    name = model_class(recipe)
    if name == "SkeletonDiffusion":
        return data + TINY_SKELETON_MODEL + ["--model.init_args.crossfade_frames=5"]
    if name == "FGDAutoencoderModule":
        return data + ["--model.init_args.hidden=16", "--model.init_args.latent_dim=8",
                       "--model.init_args.clip_frames=16"]  # fmt: skip
    raise AssertionError(f"{recipe}: no tiny overrides for model class {name} in tests/test_experiments.py")


def _as_layer(overrides: list[str], path: Path) -> Path:
    """``--a.b=v`` overrides -> a YAML layer (given right after the recipe, so overlays still apply on top)."""
    tree: dict = {}
    for item in overrides:
        key, value = item.removeprefix("--").split("=", 1)
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(tree))
    return path


def _fit(configs: list[Path], shards: Path, runs: Path, wav2vec2: Path, extra: list[str] = ()):
    """``csg fit`` of ``configs`` (recipe first) for one step; ``wav2vec2`` stands in for CSG_WAV2VEC2."""
    tiny = _as_layer(_tiny_overrides(configs[0], shards), runs / "tiny.yaml")
    args = ["fit", *[f"--config={c}" for c in [configs[0], tiny, *configs[1:]]], *CPU]
    with mock.patch.dict(os.environ, {"CSG_WAV2VEC2": str(wav2vec2)}):  # the recipes' ${oc.env:CSG_WAV2VEC2,...}
        cli = run(args + [f"--runs_root={runs}", "--run=test", *extra])
    experiment = "+".join([load(configs[0])["experiment"], *(load(c)["overlay"] for c in configs[1:])])
    if any(a.startswith("--seed=") for a in extra):
        experiment += "+seed" + next(a for a in extra if a.startswith("--seed=")).split("=", 1)[1]
    run_dir = runs / experiment / "test"
    assert Path(cli.trainer.default_root_dir) == run_dir
    assert cli.trainer.global_step == 1
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["experiment"] == experiment and saved["run"] == "test"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    if any(type(c).__name__.endswith("SampleCallback") for c in cli.trainer.callbacks):
        assert list((run_dir / "samples").glob("*.mp4")), "the sample callback wrote no video"
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    return cli, run_dir


def test_every_yaml_has_a_kind():
    unknown = [str(p.relative_to(ROOT)) for p in all_yamls() if kind(p) == "unknown"]
    assert not unknown, f"neither recipe (experiment:), overlay (overlay:), layer, component nor tool: {unknown}"


@pytest.mark.parametrize("recipe", of_kind("recipe"), ids=_id)
def test_recipe_trains_a_step(recipe, demo_shards, tmp_path, tiny_wav2vec2):
    if model_class(recipe) in TESTED_ELSEWHERE:
        where = ROOT / TESTED_ELSEWHERE[model_class(recipe)]
        assert f'"{recipe.name}"' in where.read_text(), f"{recipe.name}: not trained in {where.name}: add a test there"
        pytest.skip(f"trained in {where.name}")
    cli, run_dir = _fit([recipe], demo_shards, tmp_path, tiny_wav2vec2)
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["layers"] is None, "config.yaml must be complete without its layers"


def _pairs() -> list[tuple[Path, Path]]:
    return [(base, overlay) for overlay in of_kind("overlay") for base in bases_of(overlay)]


@pytest.mark.parametrize("base, overlay", _pairs(), ids=lambda p: _id(p))
def test_overlay_on_base_trains_a_step(base, overlay, demo_shards, tmp_path, tiny_wav2vec2):
    assert load(overlay)["overlay"] == overlay.stem, f"{overlay}: 'overlay:' should be the file's stem"
    assert "experiment" not in load(overlay), f"{overlay}: an overlay is named by 'overlay:', not 'experiment:'"
    if model_class(base) in TESTED_ELSEWHERE:  # needs that model's tiny parts: trained on them there
        where = [p.name for p in (ROOT / "tests").glob("test_*.py") if p.name != Path(__file__).name
                 and f"'{overlay.name}'" in p.read_text()]
        assert where, f"{overlay.name}: no test trains it on {base.name}'s tiny parts: add one"
        pytest.skip(f"trained in {', '.join(where)}")
    _, run_dir = _fit([base, overlay], demo_shards, tmp_path, tiny_wav2vec2)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    for keys, value in leaves({k: v for k, v in load(overlay).items() if k != "overlay"}):
        node = saved
        for key in keys:
            node = node[key]
        if isinstance(value, str) and value.endswith(".yaml"):  # a fragment: its class was built here
            assert node["class_path"] == load(overlay.parent / value)["class_path"], keys
        else:
            assert node == value, keys


def test_two_overlays_and_a_seed_name_the_run_after_all(demo_shards, tmp_path, tiny_wav2vec2):
    overlays = [SKELETON / "ablations" / "fusion_cross_attention.yaml", SKELETON / "ablations" / "target_epsilon.yaml"]
    cli, run_dir = _fit([SKELETON / "demo.yaml", *overlays], demo_shards, tmp_path, tiny_wav2vec2, ["--seed=1"])
    assert run_dir.parent.name == "skeleton-demo+fusion_cross_attention+target_epsilon+seed1"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["seed_everything"] == 1 and saved["overlay"] == "fusion_cross_attention+target_epsilon"


def test_layers_reach_every_layer_and_callback_config():
    reached = reachable_from_recipes()
    for path in of_kind("layer") + of_kind("callback"):
        assert path.resolve() in reached, f"{path.relative_to(ROOT)}: no recipe names it"


@pytest.mark.parametrize("path", of_kind("callback"), ids=lambda p: p.stem)
def test_callback_config_builds_its_class(path):
    check_class_fragment(path)


def _class_entries(node):
    if isinstance(node, dict):
        if "class_path" in node:
            yield node
        for value in node.values():
            yield from _class_entries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _class_entries(value)


@pytest.mark.parametrize("path", of_kind("component") + of_kind("layer"), ids=_id)
def test_component_is_reached_or_valid_on_its_own(path, tmp_path):
    if path.resolve() in reachable_from_recipes():
        return
    entries = list(_class_entries(load(path)))
    assert entries, f"{path.relative_to(ROOT)}: not named by any recipe and holds no class_path entry to check"
    for i, entry in enumerate(entries):
        fragment = tmp_path / f"entry{i}.yaml"
        fragment.write_text(yaml.safe_dump({"class_path": entry["class_path"], "init_args": entry.get("init_args")}))
        check_class_fragment(fragment)


def test_tool_configs_load():
    from csg_lightning.preprocess.config import load_config

    for path in of_kind("tool"):
        if path.parent.name == "data":
            load_config(path)
        elif path.parent.name == "pipeline":  # csg generate's pipelines (chains run in test_generate_cli.py)
            from csg_lightning.generation.pipeline_config import load_pipeline_config

            load_pipeline_config(path)
        else:
            check_class_fragment(path)


def test_run_name_parts_are_not_repeated_and_layer_cycles_are_named(tmp_path):
    from csg_lightning.experiment_layers import run_experiment_name, stack_configs

    assert run_experiment_name("skeleton-demo", ["a", "b"], 1) == "skeleton-demo+a+b+seed1"
    assert run_experiment_name("skeleton-demo+a+b+seed1", ["a", "b"], 1) == "skeleton-demo+a+b+seed1"  # a saved config
    (tmp_path / "x.yaml").write_text("layers: [y.yaml]\n")
    (tmp_path / "y.yaml").write_text("layers: [x.yaml]\n")
    with pytest.raises(SystemExit, match="form a cycle"):
        stack_configs(["fit", f"--config={tmp_path / 'x.yaml'}"])
    (tmp_path / "z.yaml").write_text("overlay: z\nlayers: [w.yaml]\n")
    (tmp_path / "w.yaml").write_text("trainer: {max_steps: 1}\n")
    stack = stack_configs(["fit", "-c", str(tmp_path / "z.yaml"), "--experiment=e"])
    assert stack.args == ["fit", f"--config={tmp_path / 'w.yaml'}", f"--config={tmp_path / 'z.yaml'}", "--experiment=e"]
    assert stack.overlays == ["z"] and stack.explicit_experiment
