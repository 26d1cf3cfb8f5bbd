"""Every change people, operators and the console make to the server's state: the ``do_*`` actions (SEC-1).

Theory of operation. An action is one function, ``do_<verb>(ctx, actor, ...)``, that

1. checks the rules of the change itself (``owners and admins cannot be isolated``, ``a family
   link joins a patient to a family account``) and refuses with a ``ProtocolError`` whose code a
   client, the console or the command line can act on;
2. writes in one transaction (``base.transact``), records its audit entry in that same
   transaction when it is a moderation action or an access to patients' data, and queues its bus
   events there: Postgres delivers them to every node when, and only when, the transaction commits;
3. after the commit, hands the same events to ``ctx.committed``, so the node that made the change
   has its caches current before it answers (the bus brings them to it again a moment later, which
   is harmless: applying an event is idempotent for caches).

Who may ask for a change (an account's role, managing a group, being a member) is checked by
the caller before it calls: ``imserver.access`` for protocol requests, nothing for an operator at
the command line, who holds the database anyway. Protocol handlers, the ``imserver`` command line
and the web console call the same functions, so no rule is stated twice. SQL stays in
``imserver.store``; the events are those of ``imserver.bus``.
"""
