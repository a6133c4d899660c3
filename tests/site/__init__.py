"""A faithful replica of npi.or.jp, generated from a small model and served over real HTTP."""

from .model import SECTIONS, Article, Site, generate_site, new_article
from .server import ReplicaServer

__all__ = ["SECTIONS", "Article", "ReplicaServer", "Site", "generate_site", "new_article"]
