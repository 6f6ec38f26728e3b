"""直通车: a WeCom and WeChat Official Account bot for party-branch work."""

from bot.app import create_app

__all__ = ["create_app"]
