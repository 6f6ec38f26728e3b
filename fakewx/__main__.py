"""`python -m fakewx [--host H] [--port P]`: run the fake WeCom/MP server until Ctrl-C."""

from __future__ import annotations

import argparse

from fakewx.server import FakeServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fakewx", description="Local fake of the WeCom and MP server APIs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    args = parser.parse_args(argv)
    fake = FakeServer(host=args.host, port=args.port)
    print(f"fake WeCom/MP server on {fake.base_url}  (introspection: {fake.root_url}/_fake/stats)", flush=True)
    try:
        fake.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
