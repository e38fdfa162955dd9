"""Round-robin over a list of real keys. Labels name a key without revealing it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    secret: str
    label: str


class KeyPool:
    def __init__(self, name: str, secrets: tuple[str, ...]):
        self.name = name
        self.keys = tuple(Key(s, f"{name}#{i + 1}") for i, s in enumerate(secrets))
        self._next = 0
        self.uses = [0] * len(self.keys)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def next(self) -> Key:
        if not self.keys:
            raise LookupError(f"no keys in pool {self.name}")
        index = self._next % len(self.keys)
        self._next = index + 1
        self.uses[index] += 1
        return self.keys[index]
