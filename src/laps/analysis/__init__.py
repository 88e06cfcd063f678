"""Measurement: FLOPs and parameters, speed benchmarks, plots."""
