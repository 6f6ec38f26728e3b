"""A local fake of the WeCom (企业微信) and WeChat Official Account server APIs.

Same URLs, JSON and errcodes as Tencent's servers, so the real client code runs against it in
tests, benchmarks and the demo. `FakeServer` runs it on 127.0.0.1 in a background thread;
`python -m fakewx --port 8900` runs it standalone.

The callback side (what WeCom's and WeChat's servers POST to the bot) is `bot.channels.simulator`:
it signs and encrypts as they do, sends a card tap as a `template_card_event` whose EventKey and
TaskId tell two taps in one second apart, and drops and counts (`dropped_passive_replies`) a
passive reply to a tap, which WeCom ignores. The API side refuses over-long fields: text and
markdown over 2,048 bytes (45002), a card title over 36 characters or sub_title_text over 160
(40058), a group robot's markdown over 4,096 bytes (40058), Official Account text over 2,048 bytes
(45002).

What the fake does not model (a test passing against it says nothing about these):
- retries of callbacks: the simulator sends what a test asks; it does not retry after 5 s on its own;
- the silent truncation the real servers apply to some long text (the fake refuses instead);
- the passive reply types WeCom does accept for a tap (updating the card in the reply itself);
- how a card is displayed (the 36- and 160-character limits are counted in characters, as documented,
  not in display width);
- the per-member limits, the Official Account window, token faults and the rest of the delivery
  rules, where not listed in `fakewx.server`;
- real userid case handling in directory lookups (the fake's known users are matched exactly).
"""

from fakewx.server import FakeServer, create_fake_app
from fakewx.state import FakeState

__all__ = ["FakeServer", "FakeState", "create_fake_app"]
