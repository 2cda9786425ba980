"""csg-lightning: co-speech gesture video generation on PyTorch Lightning."""

__version__ = "0.1.0"
