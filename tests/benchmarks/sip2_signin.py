"""Sign-ins per second: through the library system over SIP2 (the pysip2 stand-in of the
tests, on loopback) next to sign-ins with a PIN set in the portal (an Argon2 check), each
served by one `portal serve` worker pinned to the first core; wrk and the stand-in share
the second. A SIP2 sign-in after the first on a connection is one round trip: the portal
logs in once per connection and keeps a few open."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

from tortoise import Tortoise

from portal.db import tortoise_config
from tests.benchmarks.consent_check import serve, wrk
from tests.factories import SECRET, make_patron, publish
from tests.ils_process import running_ils
from tests.support import LOOPBACK_URL

SIP2_CARD, SIP2_PIN = "21000000009999", "Pw8qZ4xk"


async def _portal_patron(database_url: str, catalog: str, locales: tuple[str, ...]) -> str:
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        await publish(catalog, locales)
        return (await make_patron()).card
    finally:
        await Tortoise.close_connections()


def _signin_rate(url: str, card: str, pin: str) -> tuple[float, float]:
    # As a browser sends it from the sign-in page (the cross-site guard reads it).
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"}
    # One connection: sign-ins of one card at once count as each other's earlier guesses,
    # and the throttle's growing delay (by design) would be measured instead of the check.
    run = wrk(url, [("POST", "/signin", headers, f"card={card}&pin={pin}")], connections=1)
    return run.per_second, run.p99_ms


def bench_signin(database_url: str, label: str, catalog: str, locales: tuple[str, ...]) -> None:
    card = asyncio.run(_portal_patron(database_url, catalog, locales))
    env = {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_PUBLIC_URL": LOOPBACK_URL,
        "PORTAL_DEV_MODE": "false",
        "PORTAL_DELIVERY_IN_PROCESS": "false",
        # Every sign-in here succeeds and is refunded; the limit only guards failures.
        "PORTAL_SIGNIN_ATTEMPTS": "1000000",
    }
    app = "portal.app:from_environment"
    with serve(app, env, factory=True) as portal:
        portal_rate, portal_p99 = _signin_rate(portal.url, card, "2580")
    patrons = [{"card": SIP2_CARD, "pin": SIP2_PIN, "name": "Bench", "born": None, "valid": True}]
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        ils = stack.enter_context(
            running_ils(folder, patrons, login_user="portal", login_password="sip-secret")
        )
        sip2_env = {
            **env,
            "PORTAL_IDENTITY_SOURCE": "sip2",
            "PORTAL_SIP2_HOST": ils.host,
            "PORTAL_SIP2_PORT": str(ils.port),
            "PORTAL_SIP2_PLAIN_LOOPBACK": "true",
            "PORTAL_SIP2_LOGIN_USER": "portal",
            "PORTAL_SIP2_LOGIN_PASSWORD": "sip-secret",
        }
        portal = stack.enter_context(serve(app, sip2_env, factory=True))
        sip2_rate, sip2_p99 = _signin_rate(portal.url, SIP2_CARD, SIP2_PIN)
        logins = sum(1 for line in ils.requests() if line.startswith("93"))
        asked = sum(1 for line in ils.requests() if line.startswith(("63", "23")))
    print(
        f"[{label}] sign-in: through SIP2 {sip2_rate:,.0f}/s (p99 {sip2_p99:.1f} ms) | with a "
        f"portal PIN (Argon2) {portal_rate:,.0f}/s (p99 {portal_p99:.1f} ms) | the library "
        f"system saw {logins} logins for {asked:,} patron requests (one per connection), "
        f"one worker on one core, wrk -c1",
        file=sys.stdout,
    )
