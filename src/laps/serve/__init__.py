"""Using a trained model: inference (eval, predict), timelines of long videos and their segments,
and video features for a dataset.

Part of the training toolkit (``pip install 'laps[train]'``). It builds on :mod:`laps.infer` (the
device, prediction and evaluation) and :mod:`laps.data`; it imports nothing from :mod:`laps.engine`
(training), and nothing under :mod:`laps.engine` imports it.
"""
