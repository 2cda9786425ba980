"""Points every output of a run (trainer root, loggers, checkpoints) into one run folder."""

from __future__ import annotations

from pathlib import Path

_RUN_DIR_ARGS = {
    # logger class name -> init arg that holds its output folder
    "WandbLogger": "save_dir",
    "CSVLogger": "save_dir",
    "TensorBoardLogger": "save_dir",
}


def _items(value) -> list:
    if value is None or isinstance(value, bool):
        return []
    return list(value) if isinstance(value, list) else [value]


def place_run(config, run_dir: Path) -> Path:
    """Rewrite a parsed LightningCLI config (jsonargparse Namespace) so the run writes to ``run_dir``.

    Sets ``trainer.default_root_dir``, each logger's folder (W&B also gets the run name) and the
    ``dirpath`` of every ``ModelCheckpoint`` that does not name one itself.
    """
    run_dir = Path(run_dir)
    trainer = config.trainer
    trainer.default_root_dir = str(run_dir)
    for logger in _items(trainer.logger):
        name = str(logger.class_path).rsplit(".", 1)[-1]
        arg = _RUN_DIR_ARGS.get(name)
        if arg is not None:
            logger.init_args[arg] = str(run_dir)
        if name == "WandbLogger" and logger.init_args.get("name") is None:
            logger.init_args["name"] = f"{config.experiment}/{run_dir.name}"
    for callback in _items(trainer.callbacks):
        if str(callback.class_path).endswith("ModelCheckpoint") and not callback.init_args.get("dirpath"):
            callback.init_args["dirpath"] = str(run_dir / "checkpoints")
    return run_dir
