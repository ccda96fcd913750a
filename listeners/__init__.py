"""Listeners: one module per source, each `listen(source, cursor) -> Iterator[Page]`.

The runner stores each page and the cursor after it in one transaction (`Store.save_page`), so a
restart resumes where the last committed page ended. Sources are registered here, explicitly.
"""
from . import bluesky, files, mastodon, reddit, rss, twitter
from .base import Page

LISTENERS = {
    "file": files.listen,
    "rss": rss.listen,
    "twitter": twitter.listen,
    "reddit": reddit.listen,
    "mastodon": mastodon.listen,
    "bluesky": bluesky.listen,
}

__all__ = ["LISTENERS", "Page"]
