"""Firing reminder rows: the rules per kind, the per-person digest and quiet hours.

One round (`fire_due_reminders`, run by every tick; `firing`):
1. In one transaction: claim due rows (`models.reminder.claim_due`: FOR UPDATE SKIP LOCKED), then
   for each row check it is still wanted (subject there and unchanged, not stale: `useful_until`),
   work out its recipients from the state *now* (who has still not acknowledged, who has no
   approved leave), and collect one notice per recipient (`rules`, worded by `bot.texts.reminders`).
2. In the same transaction: the notices are merged per person into ONE message (`digest`), and
   written as outbox rows — held until the end of quiet hours unless one of the person's notices is
   urgent — and the rows are marked sent/skipped/cancelled with one event each. Commit.
   An acknowledgement committed before step 1 reads the deliveries suppresses the reminder, also
   for a row claimed earlier in the same round.
3. The worker sends the outbox rows later, as for every other push.

Planning jobs (`planning`) create the rows that no request creates: meeting reminders and the
required-meetings watch per period."""

from scheduler.reminders.digest import Firing, Notice, quiet_release, resolve_addresses, write_outbox
from scheduler.reminders.firing import CLAIM_LIMIT, ROUND_SECONDS, fire, fire_due_reminders
from scheduler.reminders.planning import (
    MEETING_STEPS,
    MISSED_USEFUL_FOR,
    period_key,
    plan_meeting_reminders,
    plan_required_meetings,
    types_ending,
)
from scheduler.reminders.rules import RULES, BranchLag, lagging_branches, leaders_of, liaisons_of

__all__ = [
    "CLAIM_LIMIT",
    "MEETING_STEPS",
    "MISSED_USEFUL_FOR",
    "ROUND_SECONDS",
    "RULES",
    "BranchLag",
    "Firing",
    "Notice",
    "fire",
    "fire_due_reminders",
    "lagging_branches",
    "leaders_of",
    "liaisons_of",
    "period_key",
    "plan_meeting_reminders",
    "plan_required_meetings",
    "quiet_release",
    "resolve_addresses",
    "types_ending",
    "write_outbox",
]
