"""Help desk (DESK-01)."""

from __future__ import annotations

from .base import Base


class DeskApi(Base):
    pass
