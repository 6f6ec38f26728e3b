"""直通车: a WeCom and WeChat Official Account bot for party-branch work.

`create_app` is looked up on first use, so importing a small module of the package (`bot.command`,
`bot.timefmt`) does not drag in the composition root; `flask --app bot` and gunicorn's
`bot:create_app()` find it all the same."""

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from bot.app import create_app

        return create_app
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
