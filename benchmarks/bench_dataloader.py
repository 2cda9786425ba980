"""Data-loading benchmark: clips/s delivered by SkeletonAudioDataModule's train loader.

Prints one JSON line. Demo settings by default (batch 8, window 250 + prefix 25, 2 workers);
epochs repeat until ``--batches`` batches were delivered. The first batch (worker start-up) is
timed separately and left out of the rate.

    python benchmarks/bench_dataloader.py [SHARD_DIR] [--batch-size 8] [--num-workers 2] [--batches 50]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from csg_lightning.data.skeleton_audio import SkeletonAudioDataModule


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "data_dir", nargs="?", default="data/demo/shards", help="shard dir (csg-data shard output)"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--window", type=int, default=250)
    parser.add_argument("--num-prefix", type=int, default=25)
    parser.add_argument("--batches", type=int, default=50, help="batches to time (after the first)")
    args = parser.parse_args(argv)
    if not os.path.exists(os.path.join(args.data_dir, "manifest.json")) and "://" not in args.data_dir:
        raise SystemExit(
            f"{args.data_dir}: no shard dir there; run `make demo-data` (or csg-data shard SRC DST)"
        )

    dm = SkeletonAudioDataModule(
        args.data_dir,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        window=args.window,
        num_prefix=args.num_prefix,
    )
    start = time.perf_counter()
    dm.setup("fit")
    loader = dm.train_dataloader()
    setup_s = time.perf_counter() - start

    clips, batches, epochs, first_batch_s = 0, 0, 0, None
    t0 = time.perf_counter()
    while batches < args.batches:
        epochs += 1
        epoch_start = time.perf_counter()
        for batch in loader:
            if first_batch_s is None:
                first_batch_s = time.perf_counter() - epoch_start
                t0 = time.perf_counter()
            else:
                clips += len(batch["clip_id"])
                batches += 1
            if batches >= args.batches:
                break
        if first_batch_s is None:
            raise SystemExit(f"{args.data_dir}: the train split delivered no batch")
    elapsed = time.perf_counter() - t0
    result = {
        "benchmark": "dataloader",
        "data_dir": args.data_dir,
        "clips_per_s": round(clips / elapsed, 2) if elapsed > 0 else None,
        "batches": batches,
        "clips": clips,
        "seconds": round(elapsed, 3),
        "first_batch_s": round(first_batch_s, 3),
        "setup_s": round(setup_s, 3),
        "epochs": epochs,
        "train_clips": dm.manifest["splits"]["train"]["num_records"],
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "window": args.window,
        "num_prefix": args.num_prefix,
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
