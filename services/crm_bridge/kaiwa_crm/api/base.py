"""The servicer's parts share the runtime."""

from __future__ import annotations

from ..runtime import Runtime


class Base:
    def __init__(self, rt: Runtime):
        self.rt = rt
