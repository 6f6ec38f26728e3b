"""Message templates: the wording of every push, reminder and alert, and of the replies several
places send, one module per aggregate (`directive`, `study`, `meeting`, `reminders`). Models and
scheduler jobs decide and return what happened; these functions word it, so a wording fix is one
edit. A push is rendered here before its outbox row is written, in the same transaction, and the
outbox keeps the rendered payload: a resend is byte-identical to the first send."""
