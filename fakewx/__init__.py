"""A local fake of the WeCom (企业微信) and WeChat Official Account server APIs.

Same URLs, JSON and errcodes as Tencent's servers, so the real client code runs against it in
tests, benchmarks and the demo. `FakeServer` runs it on 127.0.0.1 in a background thread;
`python -m fakewx --port 8900` runs it standalone."""

from fakewx.server import FakeServer, create_fake_app
from fakewx.state import FakeState

__all__ = ["FakeServer", "FakeState", "create_fake_app"]
