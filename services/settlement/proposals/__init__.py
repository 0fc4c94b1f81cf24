"""Realignment proposals (spec §4).

- ``history``: the statement that stands for each settled period;
- ``detectors``: one pure function per §4 kind, history → findings;
- ``proposer``: finding → current and proposed term, with the rationale;
- ``impact``: the window re-settled under proposed (or what-if) terms;
- ``service``: ``detect`` (after settlement and on demand), ``accept``, ``reject``.

Nothing is imported here, so ``value`` and ``review`` can use ``history``
without pulling in the service that uses them.
"""
