"""People next to tokens (spec §8): accounts, passwords, sessions, sign-in slow-down.

Machines call the API with bearer tokens (``services.api.tokens``); people
sign in at ``/login`` and carry a session cookie. Both become the same
``Principal``, so one set of role and party rules applies to every door.
"""
