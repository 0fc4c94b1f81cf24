"""The ``viu`` command line. Parsing only; each command calls one service.

Nothing here connects to anything before a command runs, so ``viu --help`` is
instant and side-effect free.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from services.config import ConfigError, Settings, load_settings
from services.logs import configure as configure_logging

Handler = Callable[[argparse.Namespace, Settings], int]


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from services.runtime import run

    return run(settings, set(args.components))


def _settle(args: argparse.Namespace, settings: Settings) -> int:
    if args.period is None:
        from services.runtime import run

        return run(settings, {"settle"})
    from services.runtime import resolved
    from services.settlement.runs import settle_by_hand

    with resolved(settings, need_broker=False, say=_err) as res:
        return settle_by_hand(res.engine, args.period, args.contract, progress=not args.quiet)


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from services.db import current_revision
    from services.runtime import resolved

    with resolved(settings, need_broker=False, say=_err) as res:
        print(f"database at revision {current_revision(res.engine)}")
    return 0


def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    from services.api.tokens import create_token
    from services.runtime import resolved

    with resolved(settings, need_broker=False, say=_err) as res, res.engine.begin() as conn:
        token_id, plain = create_token(
            conn, args.role, args.party, label=args.label, expires_at=args.expires_at
        )
        _audit_cli(conn, "token.create", str(token_id), role=args.role, party=args.party)
    party = f" for {args.party}" if args.party else ""
    print(f"created {args.role} token #{token_id}{party}: {plain}")
    return 0


def _token_list(args: argparse.Namespace, settings: Settings) -> int:
    from services.api.tokens import list_tokens
    from services.runtime import resolved

    with resolved(settings, need_broker=False, say=_err) as res, res.engine.connect() as conn:
        for t in list_tokens(conn):
            print(json.dumps(t, default=str))
    return 0


def _token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from services.api.tokens import revoke_token
    from services.runtime import resolved

    with resolved(settings, need_broker=False, say=_err) as res, res.engine.begin() as conn:
        revoke_token(conn, args.token_id)
        _audit_cli(conn, "token.revoke", str(args.token_id))
    print(f"revoked token #{args.token_id}")
    return 0


def _user_create(args: argparse.Namespace, settings: Settings) -> int:
    from services.api.people.users import UserIn, create_user
    from services.runtime import resolved

    body = UserIn(
        email=args.email,
        name=args.name or _name_from(args.email),
        role=args.role,
        party=args.party,
        password=_read_password(args.password_file),
    )
    with resolved(settings, need_broker=False, say=_err) as res, res.engine.begin() as conn:
        user = create_user(conn, body, _cli_actor())
        _audit_cli(conn, "user.create", str(user.id), "user", email=user.email, role=user.role)
    party = f", {user.party}" if user.party else ""
    print(f"created person #{user.id} {user.name} <{user.email}> ({user.role}{party})")
    print("they sign in at /login with this email and the password from the file")
    return 0


def _user_list(args: argparse.Namespace, settings: Settings) -> int:
    from services.api.people.users import listing
    from services.runtime import resolved

    with resolved(settings, need_broker=False, say=_err) as res, res.engine.connect() as conn:
        for u in listing(conn):
            print(json.dumps(u.as_json()))
    return 0


def _user_disable(args: argparse.Namespace, settings: Settings) -> int:
    from services.api.people.users import disable
    from services.runtime import resolved

    with resolved(settings, need_broker=False, say=_err) as res, res.engine.begin() as conn:
        user, ended = disable(conn, args.user_id)
        _audit_cli(conn, "user.disable", str(user.id), "user", sessions_ended=ended)
    print(f"disabled {user.email}; ended {ended} session(s)")
    return 0


def _read_password(path: str) -> str:
    """The first line of the file ("-": standard input); never from the command line,
    where it would show in the process list and the shell history."""
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        raise _InputError(f"cannot read the password file: {exc.strerror}") from None
    return text.split("\n", 1)[0].rstrip("\r")


def _name_from(email: str) -> str:
    """ "anna.berg@x" → "Anna Berg" when no --name is given."""
    local = email.split("@", 1)[0]
    return " ".join(part.capitalize() for part in local.replace("_", ".").split(".") if part)


def _cli_actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


class _InputError(Exception):
    """Bad input found after parsing (a file that cannot be read): one line, exit 2."""


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from services.runtime import resolved
    from services.simulator import options_from, simulate

    options = options_from(args)
    with resolved(settings, need_broker=False, say=_err) as res:
        return simulate(res.engine, settings, options)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from services.demo import command
    from services.runtime import resolved

    with resolved(settings, need_broker=False, say=_err) as res:
        return command(res.engine, settings, args)


def _audit_cli(
    conn: Any, action: str, object_id: str, object_type: str = "token", **details: Any
) -> None:
    import socket

    from services import audit

    audit.record(
        conn,
        actor=_cli_actor(),
        action=action,
        object_type=object_type,
        object_id=object_id,
        source=f"cli@{socket.gethostname()}",
        details=details,
    )


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _period(value: str) -> str:
    """Checked while parsing, before anything connects to a database."""
    from schemas.periods import InvalidPeriod, Period

    try:
        return str(Period.parse(value))
    except InvalidPeriod as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _aware(value: str) -> datetime:
    ts = datetime.fromisoformat(value)
    if ts.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone offset, e.g. 2027-01-01T00:00:00+00:00")
    return ts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="viu",
        description="Value-in-use contracts: telemetry ingest, settlement, realignment.",
        epilog="Configuration comes from VIU_* environment variables (see README).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run ingester, scheduler and API together")
    up.set_defaults(handler=_up, components=["ingest", "settle", "api"])
    for name, help_ in (
        ("ingest", "run the MQTT ingester alone"),
        ("api", "run the HTTP API alone"),
    ):
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(handler=_up, components=[name])

    settle = sub.add_parser(
        "settle", help="run the settlement scheduler, or settle one period by hand with --period"
    )
    settle.add_argument("--period", type=_period, help="settle this period now (YYYY-MM) and exit")
    settle.add_argument("--contract", help="only this contract (default: all)")
    settle.add_argument("--quiet", action="store_true", help="no progress bar")
    settle.set_defaults(handler=_settle)

    dbp = sub.add_parser("db", help="database maintenance")
    dbsub = dbp.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dbsub.add_parser("upgrade", help="apply migrations").set_defaults(handler=_db_upgrade)

    tok = sub.add_parser("token", help="API tokens")
    toksub = tok.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = toksub.add_parser("create", help="create a token (printed as the last word)")
    create.add_argument(
        "--role", required=True, choices=["admin", "provider", "customer", "finance", "auditor"]
    )
    create.add_argument("--party", help="the party a provider/customer token acts for")
    create.add_argument("--label", help="a note to recognise the token by")
    create.add_argument("--expires-at", type=_aware, help="expiry (ISO 8601 with offset)")
    create.set_defaults(handler=_token_create)
    toksub.add_parser("list", help="list tokens (never their secrets)").set_defaults(
        handler=_token_list
    )
    revoke = toksub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id", type=int)
    revoke.set_defaults(handler=_token_revoke)
    _add_user(sub)
    _add_simulate(sub)
    _add_demo(sub)
    return p


def _add_user(sub: Any) -> None:
    from services.api.tokens import ROLES

    user = sub.add_parser("user", help="people who sign in at /login")
    usersub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = usersub.add_parser("create", help="create a person with a password")
    create.add_argument("--email", required=True, help="their sign-in name")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--party", help="the party they act for (required for provider/customer)")
    create.add_argument(
        "--name", help="display name (default: from the email, anna.berg → Anna Berg)"
    )
    create.add_argument(
        "--password-file",
        required=True,
        help="a file whose first line is the password ('-': stdin)",
    )
    create.set_defaults(handler=_user_create)
    usersub.add_parser("list", help="list people (never their password hashes)").set_defaults(
        handler=_user_list
    )
    disable = usersub.add_parser("disable", help="disable a person and end their sessions")
    disable.add_argument("user_id", type=int)
    disable.set_defaults(handler=_user_disable)


def _add_simulate(sub: Any) -> None:
    sim = sub.add_parser(
        "simulate",
        help="simulated fleet telemetry over MQTT, or --backfill months of history",
        description="Realistic telemetry for registered devices (shifts, weekends, breakdowns, "
        "maintenance, customer stops, quality dips), optionally with injected faults.",
    )
    pick = sim.add_mutually_exclusive_group()
    pick.add_argument("--devices", type=int, help="the first N registered devices (default: all)")
    pick.add_argument("--device-ids", help="exactly these registered devices: a,b,c")
    sim.add_argument(
        "--rate",
        type=float,
        help="samples per device per simulated minute (default 1; backfill 1/15)",
    )
    sim.add_argument("--duration", default="1h", help="simulated time to cover: 90s, 15m, 2h, 7d")
    sim.add_argument("--start", help="simulated start (ISO 8601 with offset; default: ends now)")
    sim.add_argument("--speedup", type=float, default=1.0, help="times faster than real time")
    sim.add_argument("--seed", default="1", help="same seed, same telemetry")
    for name, help_ in (
        ("duplicates", "re-send this fraction of samples unchanged"),
        ("out-of-order", "send this fraction after the device's next sample"),
        ("late", "hold this fraction back until the end of the run"),
        ("malformed", "add this many malformed payloads per sample"),
        ("unknown-devices", "add this many samples from unregistered devices per sample"),
    ):
        sim.add_argument(f"--{name}", type=float, default=0.0, metavar="FRACTION", help=help_)
    sim.add_argument(
        "--clock-skew", type=int, default=0, metavar="SECONDS", help="max device clock offset"
    )
    sim.add_argument(
        "--backfill", action="store_true", help="write history to the database instead"
    )
    sim.add_argument("--from", dest="span_from", help="backfill from (YYYY-MM or ISO 8601)")
    sim.add_argument("--to", dest="span_to", help="backfill to (YYYY-MM inclusive, or ISO 8601)")
    sim.add_argument("--batch", type=int, default=5000, help="backfill samples per transaction")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.add_argument(
        "--format",
        choices=("json", "sparkplug"),
        default="json",
        help="live payloads: viu's JSON, or Sparkplug B (births, DDATA with seq, deaths on stop; "
        "group VIU_SPARKPLUG_GROUP, else 'viu'; edge node 'viu-sim')",
    )
    sim.set_defaults(handler=_simulate)


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="demonstration contracts with six months of drifting history, settled"
    )
    demo.add_argument("--months", type=int, default=6, help="months of history (default 6)")
    demo.add_argument(
        "--end", type=_period, help="last month to settle, YYYY-MM (default: last month)"
    )
    demo.add_argument(
        "--scale", type=float, default=1.0, help="sample density: 1 = every 15 min, 0.25 = hourly"
    )
    demo.set_defaults(handler=_demo)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        _err(f"viu: configuration error: {exc}")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from pydantic import ValidationError
        from sqlalchemy.exc import OperationalError

        from schemas.money import UnknownCurrency
        from schemas.periods import InvalidPeriod, NaiveDatetime, UnknownTimezone
        from services.errors import ViuError

        if isinstance(exc, ViuError):
            _err(f"viu: {exc.detail}")
            return 1
        if isinstance(exc, _InputError):
            _err(f"viu: {exc}")
            return 2
        if isinstance(exc, ValidationError):
            _err(f"viu: {_validation_text(exc)}")
            return 2
        if isinstance(exc, ConfigError):  # e.g. a TLS file found unreadable at start
            _err(f"viu: configuration error: {exc}")
            return 2
        if isinstance(exc, OperationalError):
            _err(f"viu: cannot reach the database: {str(exc.orig).strip().splitlines()[0]}")
            return 1
        if isinstance(exc, InvalidPeriod | NaiveDatetime | UnknownTimezone | UnknownCurrency):
            _err(f"viu: {exc}")
            return 2
        raise


def _validation_text(exc: Any) -> str:
    """``--email: not an email address``: the option, not pydantic's model path."""
    return "; ".join(
        f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: "
        f"{str(e['msg']).removeprefix('Value error, ')}"
        for e in exc.errors()
    )


if __name__ == "__main__":
    sys.exit(main())
