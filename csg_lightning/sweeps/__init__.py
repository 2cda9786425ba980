"""Sweeps of ablations: W&B sweep YAMLs checked (sweep_spec), expanded (expand), run here without a server
(local_runner, ``csg sweep --local``) and tabulated over seeds (report, ``csg sweep-report``)."""
