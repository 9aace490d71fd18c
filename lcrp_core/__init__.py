"""LCRP sweeps: ablation sweeps for training-free referring video object segmentation."""

__version__ = "0.1.0"
