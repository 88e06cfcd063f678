"""A classifier head made from text: what a CLIP-family model's class prompts turn into.

A :class:`TextHead` replaces a timm image model's ``head``. It keeps the image tower's own projection
into the joint image-text space (CLIP's visual projection; an identity where the tower has none, as
SigLIP's), normalises the projected feature, and scores it against one unit text embedding per class:

    logits = logit_scale * cos(proj(feature), text_embedding_k) + bias_k

``classifier.weight`` ``(K, D)`` holds the class text embeddings and is trainable like any linear
classifier; ``logit_scale`` is CLIP's (``exp`` of the learned log scale), kept fixed; the bias is
SigLIP's logit bias where the model has one, zero for CLIP. A model's ``video_cfg.head == "text"``
says its head is a :class:`TextHead`; ``video_cfg.projection`` is the width of the projection (timm's
``num_classes`` of the image model, 0 where it has none), so the model is rebuilt with timm alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TextHead(nn.Module):
    """``proj`` (the image tower's projection, ``nn.Linear`` or ``nn.Identity``) -> L2 normalisation ->
    scaled cosine against ``num_classes`` text embeddings of width ``embed_dim``.

    Features ``(N, F)`` -> logits ``(N, K)``; :meth:`embed` gives the unit joint-space embeddings
    ``(N, D)`` and :meth:`classify` the logits of (means of) them, linearly.
    """

    def __init__(self, proj: nn.Module, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.proj = proj
        self.classifier = nn.Linear(embed_dim, num_classes)
        self.register_buffer("logit_scale", torch.ones(()))

    @torch.no_grad()
    def set_text(self, embeddings: torch.Tensor, logit_scale: float, bias: float = 0.0) -> None:
        """Set the class text embeddings ``(K, D)`` (unit rows), CLIP's logit scale and SigLIP's bias."""
        self.classifier.weight.copy_(embeddings)
        self.classifier.bias.fill_(bias)
        self.logit_scale.fill_(logit_scale)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """Unit embeddings ``(N, D)`` in the joint image-text space of pooled features ``(N, F)``."""
        return F.normalize(self.proj(features), dim=-1)

    def classify(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` = ``logit_scale * embeddings @ weight.T + bias``: linear in ``embeddings``,
        so the logits of a mean of frame embeddings are the mean of the frames' logits."""
        return F.linear(embeddings, self.classifier.weight) * self.logit_scale + self.classifier.bias

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(features))


def install_text_head(backbone: nn.Module, projection: int, num_classes: int) -> TextHead:
    """Replace the ``head`` of a timm image model built with ``num_classes=projection`` (its projection,
    0 for none) by a :class:`TextHead` of ``num_classes`` classes (weights still to be set); returns it."""
    embed_dim = projection or backbone.num_features
    head = TextHead(backbone.head, embed_dim, num_classes)
    backbone.head = head
    return head
