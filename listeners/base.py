"""What every listener gives back: a page of mentions and the cursor to resume after them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.mention import Mention


@dataclass(frozen=True)
class Page:
    mentions: list[Mention]
    cursor: Any = field(default=None)
