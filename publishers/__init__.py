"""Dev.to and Bluesky adapters behind one protocol.

What the agents may use from here is the seam: `publishers.protocol` (Post, Publisher, the error
tree) and, from this package root, the link policy both rooms apply (`publishers.urls`): the critic
judges a draft with the same URL resolution and allowed-host check that the Bluesky facets and link
card apply when posting, so the rule has one home.
"""

from publishers.urls import BLUESKY_APP_URL, LinkPolicy, Target, resolve, text_links

__all__ = ["BLUESKY_APP_URL", "LinkPolicy", "Target", "resolve", "text_links"]
