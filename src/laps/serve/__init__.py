"""Serving trained models: video features for whole datasets (:mod:`laps.serve.features`)."""
