"""The knowledge token of ViTPose §3.4 (Eq. 5-6): one learned token that carries a teacher's pose knowledge.

Token training (Eq. 5): t* = argmin_t MSE(T([t; X]), K_gt). A single (1, 1, C_t) token is put in front of
the frozen teacher's patch tokens, after the patch and position embedding, and goes through every block
with full attention; only the token is trained. It is not a position: it gets no position embedding.

Student (Eq. 6): the frozen t* is put in front of the student's patch tokens the same way. The paper
does not say how a token of the teacher's width (ViTPose-L: 1,024) enters a narrower student (ViTPose-B:
768). Our choice: a linear map C_t -> C_s (`proj`), trained with the student while t* stays frozen. It is
the smallest module that can carry every direction of t* into the student's space; it adds C_t x C_s + C_s
parameters (0.8 M for L -> B) and nothing per image but the one token. With equal widths the map starts as
the identity, so the student starts from t* itself.

`KnowledgeToken` (the student's side) keeps t* as a persistent buffer, so the optimizer never sees it but
the model's state_dict (and so the exported checkpoint) carries it: `knowledge_token.token` (1, 1, C_t)
and `knowledge_token.proj.{weight,bias}`.
"""
from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import nn


class TeacherToken(nn.Module):
    """The token being trained (Eq. 5): a (1, 1, C) parameter, trunc-normal(0.02) like ViT's class token.

    forward(images, teacher) -> the teacher's heatmaps with the token in front of its patch tokens. The
    teacher is an argument, not a submodule: it is frozen, never saved with the token, and DDP then
    synchronises the token's gradient only.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, dim))
        trunc_normal_(self.token, std=0.02)

    def forward(self, images: torch.Tensor, teacher: nn.Module) -> torch.Tensor:
        """images (B, 3, H, W) -> heatmaps (B, K, H/4, W/4)."""
        return teacher(images, prefix=self.token)


class KnowledgeToken(nn.Module):
    """The student's side (Eq. 6): the frozen teacher token t* (1, 1, C_t) -> proj -> (1, 1, C_s)."""

    def __init__(self, teacher_dim: int, student_dim: int) -> None:
        super().__init__()
        self.register_buffer("token", torch.zeros(1, 1, teacher_dim))  # t*: loaded, never trained
        self.proj = nn.Linear(teacher_dim, student_dim)
        if teacher_dim == student_dim:
            nn.init.eye_(self.proj.weight)
        else:
            trunc_normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    def set_token(self, token: torch.Tensor) -> None:
        """Copy t* (1, 1, C_t) in; ValueError when its shape is not the buffer's."""
        if tuple(token.shape) != tuple(self.token.shape):
            raise ValueError(f"knowledge token of shape {list(token.shape)}; the model expects "
                             f"{list(self.token.shape)} (the teacher's width)")
        with torch.no_grad():
            self.token.copy_(token)

    def forward(self) -> torch.Tensor:
        """-> (1, 1, C_s): the token as the student's blocks see it."""
        return self.proj(self.token)
