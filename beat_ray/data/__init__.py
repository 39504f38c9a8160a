"""Data stage: readers, the embedded `synth` dataset, signal utilities, noise, cache and report.

    from beat_ray.data import load
    ds = load("synth", fs=100)                       # embedded, offline
    ds = load("ptbxl", root="/data/ptb-xl/1.0.3", task="superdiagnostic")
"""
from beat_ray.data.dataset import SPLITS, ECGDataset
from beat_ray.data.errors import RecordError
from beat_ray.data.leads import LEADS
from beat_ray.data.prepare import format_report, load, prepare

__all__ = ["ECGDataset", "LEADS", "RecordError", "SPLITS", "format_report", "load", "prepare"]
