"""Inference: the floor below training (``laps.engine``) and serving (``laps.serve``).

``device`` resolves every ``--device`` and ``runtime.device``; ``predict`` runs a model over the
test views of videos; ``evaluate`` adds the accuracy metrics and the eval writers; ``progress`` is
the bar or log lines of a long loop; ``distributed`` the ranks of a ``torchrun`` launch. Nothing
here imports training or serving code, so ``laps predict`` loads no training module.
"""
