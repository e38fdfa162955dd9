"""Model override: a fixed model (GEMINI_CALO_MODEL_OVERRIDE) or a Python transformer.

Applied where the dialect keeps the model (path or body), before routing, so routes see
the effective model.
"""

from __future__ import annotations

from collections.abc import Callable


class ModelOverride:
    def __init__(self, fixed: str | None, transformer: Callable[[str], str] | None = None):
        self.fixed = fixed
        self.transformer = transformer

    def __bool__(self) -> bool:
        return bool(self.fixed or self.transformer)

    def apply(self, model: str | None) -> str | None:
        if model is None:
            return self.fixed
        if self.transformer is not None:
            model = self.transformer(model) or model
        return self.fixed or model
