"""Benchmark harness behind ``laps bench``: models side by side (:mod:`laps.bench.model`) and the
data pipeline (:mod:`laps.bench.data`). Only the command line imports it; the library does not."""
