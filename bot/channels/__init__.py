"""Channel adapters. Only this package imports wechatpy or knows XML, openids and errcodes."""

from __future__ import annotations

from config.settings import Settings
from models.identity import Channel


def build_channels(settings: Settings, store=None) -> dict[Channel, object]:
    channels: dict[Channel, object] = {}
    if settings.wecom is not None:
        from bot.channels.wecom import WeComChannel

        channels[Channel.WECOM] = WeComChannel(settings.wecom, max_skew=settings.max_clock_skew_seconds)
    if settings.mp is not None:
        from bot.channels.mp import MpChannel

        channels[Channel.MP] = MpChannel(settings.mp, max_skew=settings.max_clock_skew_seconds, store=store)
    return channels
