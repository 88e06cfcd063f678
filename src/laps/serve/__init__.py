"""Using a trained model: inference (eval, predict), timelines of long videos and their segments,
video features for a dataset, and publishing a run to the Hugging Face Hub.

Part of the training toolkit (``pip install 'laps[train]'``). It builds on :mod:`laps.engine`'s
evaluation and configuration, and nothing under :mod:`laps.engine` imports it.
"""
