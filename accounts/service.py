"""Sign-up, log-in, sessions and passwords.

Sessions are opaque random tokens (256 bits), kept only as their SHA-256, with an expiry.
Failed log-ins are limited per (account, client address), so an attacker elsewhere can't lock a
victim out, and per client address across accounts; failed password changes per account.

Every argon2 hash and verification runs on the service's bounded :class:`HashPool`, never on the
event loop, and a refusal that can be decided without one (a rate limit, a bad input) is.

Ended sessions are published (:class:`SessionRevoked`, :class:`SessionsRevoked`, by token hash)
after their commit, so the realtime layer closes the connections opened with them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from accounts.events import SessionRevoked, SessionsRevoked
from accounts.passwords import HashPool, hash_password, verify_password, verify_unknown
from accounts.ratelimit import RateLimiter, Rule
from accounts.sessions import SessionCache
from clientaddr import address_key
from clock import Clock, now
from db import models
from db.housekeeping import delete_in_batches
from db.sql import execute, fetch_dicts
from domain_events import Publisher
from markets import ledger
from refusals import Refusal, RefusalCode, validation
from settings import Settings

USERNAME = re.compile(r"[a-z0-9_]{3,32}")


@cache
def _columns(model: type[Model]) -> tuple[str, ...]:
    # Read once Tortoise is initialised (its relations' columns are only known then).
    return tuple(model._meta.fields_db_projection.values())


@cache
def _session_with_user() -> str:
    """A live session of a token hash, with its user (``Accounts.session``)."""
    return (
        "SELECT "
        + ", ".join(f"s.{column} AS _s_{column}" for column in _columns(models.Session))
        + ", "
        + ", ".join(f"u.{column}" for column in _columns(models.User))
        + " FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?"
    )


@dataclass(frozen=True)
class IssuedSession:
    """A new session's token (shown once) and when it expires."""

    token: str
    expires_at: datetime
    user: models.User


def token_hash(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Accounts:
    """The account operations, bound to the settings and the rate limiter.

    Owns the password-hashing threads (started on first use): call :meth:`close` at shut-down.
    """

    def __init__(
        self,
        settings: Settings,
        limiter: RateLimiter,
        *,
        publish: Publisher,
        clock: Clock = now,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        # Told of ended sessions, so the connections opened with them close.
        self.publish = publish
        # Session expiry and revocation times; tests replace it.
        self.clock = clock
        self.signup_rule = Rule.parse("signup/address", settings.signup_rate_per_address)
        self.login_account_rule = Rule.parse(
            "login-failure/account", settings.login_failure_rate_per_account
        )
        self.login_address_rule = Rule.parse(
            "login-failure/address", settings.login_failure_rate_per_address
        )
        self.change_password_rule = Rule.parse(
            "change-password-failure/account", settings.change_password_failure_rate
        )
        self.hashing = HashPool(settings.password_hash_workers, settings.password_hash_queue)
        # Sessions authenticate() found, for a moment (accounts.sessions); the app ties it to
        # the broker (revocations from other workers, gaps).
        self.sessions = SessionCache(settings.session_cache_ms, settings.session_cache_size)

    async def close(self) -> None:
        """Stop the hashing threads (the app's lifespan calls this on shut-down)."""
        await self.hashing.close()

    # -- validation --------------------------------------------------------------------------

    def _password(self, password: str, field: str) -> None:
        low, high = self.settings.password_min_length, self.settings.password_max_length
        if not low <= len(password) <= high:
            raise validation(f"Passwords are {low} to {high} characters long.", field)

    @staticmethod
    def _username(username: str) -> str:
        name = username.strip().lower()
        if not USERNAME.fullmatch(name):
            raise validation("Usernames are 3 to 32 letters, digits or underscores.", "username")
        return name

    @staticmethod
    def _display_name(display_name: str) -> str:
        name = unicodedata.normalize("NFC", " ".join(display_name.split()))
        if not 1 <= len(name) <= 80 or any(unicodedata.category(c)[0] == "C" for c in name):
            raise validation("Display names are 1 to 80 printable characters.", "displayName")
        return name

    # -- operations ----------------------------------------------------------------------------

    async def sign_up(
        self, username: str, password: str, display_name: str, address: str
    ) -> IssuedSession:
        """Create a reader account with its starting credits, and log it in."""
        name = self._username(username)
        shown = self._display_name(display_name)
        self._password(password, "password")
        # The hash's place first: a server too busy to hash refuses without using up the
        # address's sign-up budget.
        with self.hashing.reserve() as slot:
            # An IPv6 client counts as its /64: it can rotate through the whole prefix.
            retry = await self.limiter.hit(self.signup_rule, address_key(address))
            if retry is not None:
                raise Refusal(RefusalCode.RATE_LIMITED, "Too many sign-ups from here.", None, retry)
            # Looked up at call time: tests swap in a cheap hasher.
            password_hash = await slot.run(hash_password, password)
        now = self.clock()
        try:
            async with in_transaction() as conn:
                user = await models.User.create(
                    username=name,
                    display_name=shown,
                    password_hash=password_hash,
                    role=models.Role.READER,
                    created_at=now,
                    using_db=conn,
                )
                await ledger.grant_starting_credits(
                    conn, user.id, self.settings.signup_grant_cents, now
                )
                session = await self._issue(conn, user, now)
        except IntegrityError as exc:
            raise Refusal(
                RefusalCode.USERNAME_TAKEN, f"The username {name!r} is taken.", ["username"]
            ) from exc
        return session

    async def log_in(self, username: str, password: str, address: str) -> IssuedSession:
        """A new session for the right password; failures are rate limited."""
        name = username.strip().lower()
        # An IPv6 client counts as its /64: it can rotate through the whole prefix.
        address = address_key(address)
        account_key = f"{name}|{address}"
        # Take the tokens before hashing, not after a failure: checking first and counting
        # later let any number of concurrent guesses through on one token. A success gives the
        # address's token back and clears the account's failures.
        taken: list[tuple[Rule, str]] = []
        for rule, key in (
            (self.login_account_rule, account_key),
            (self.login_address_rule, address),
        ):
            retry = await self.limiter.hit(rule, key)
            if retry is not None:
                for taken_rule, taken_key in taken:
                    await self.limiter.refund(taken_rule, taken_key)
                raise Refusal(
                    RefusalCode.RATE_LIMITED, "Too many failed log-ins; wait.", None, retry
                )
            taken.append((rule, key))
        # An over-long password can't be right: refuse it without paying for the hash.
        too_long = len(password) > self.settings.password_max_length
        # A name no account can have (longer than the column, say: Tortoise refuses to send it).
        no_such_name = not USERNAME.fullmatch(name)
        try:
            user = None
            if not (too_long or no_such_name):
                user = await models.User.get_or_none(username=name)
            if too_long:
                ok = False
            elif user is None:
                # As long as a wrong password, so a miss doesn't tell which usernames exist.
                ok = await self.hashing.run(verify_unknown, password)
            else:
                ok = await self.hashing.run(verify_password, user.password_hash, password)
        except BaseException:
            # No attempt was made (the hash pool was full, the database down): it doesn't count.
            for taken_rule, taken_key in taken:
                await self.limiter.refund(taken_rule, taken_key)
            raise
        if user is None or not ok:
            raise Refusal(RefusalCode.INVALID_CREDENTIALS, "Wrong username or password.")
        await self.limiter.reset(self.login_account_rule, account_key)
        await self.limiter.refund(self.login_address_rule, address)
        async with in_transaction() as conn:
            return await self._issue(conn, user, self.clock())

    async def log_out(self, token: str) -> bool:
        """Revoke the session of ``token`` now; whether it was live (only then is it published)."""
        hashed = token_hash(token)
        changed = await execute(
            "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
            (self.clock(), hashed),
        )
        # Before answering: this worker's next request with the token is anonymous.
        self.sessions.forget_token(hashed)
        if changed != 1:
            return False
        await self.publish(SessionRevoked(hashed))
        return True

    async def change_password(
        self, user: models.User, token: str, current: str, new: str
    ) -> datetime:
        """Set a new password and end every other session of the account.

        Returns the expiry of the session in use, which stays. Wrong current passwords are
        limited per account (``change_password_failure_rate``); a success clears the count.
        """
        # Everything that needs no hash is refused before one is paid for.
        self._password(new, "newPassword")
        key = str(user.id)
        with self.hashing.reserve() as slot:
            # The token is taken before verifying, not after a failure as log-in does: checking
            # first and counting later let every concurrent request through on one token. A
            # success refills the bucket, so only failures stay counted.
            retry = await self.limiter.hit(self.change_password_rule, key)
            if retry is not None:
                raise Refusal(
                    RefusalCode.RATE_LIMITED, "Too many wrong passwords; wait.", None, retry
                )
            # An over-long password can't be right: refused without hashing it.
            ok = len(current) <= self.settings.password_max_length and await slot.run(
                verify_password, user.password_hash, current
            )
        if not ok:
            raise Refusal(
                RefusalCode.INVALID_CREDENTIALS,
                "The current password is wrong.",
                ["currentPassword"],
            )
        await self.limiter.reset(self.change_password_rule, key)
        if new == current:
            raise validation("The new password is the current one.", "newPassword")
        new_hash = await self.hashing.run(hash_password, new)
        now = self.clock()
        keep = token_hash(token)
        async with in_transaction() as conn:
            await execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", (new_hash, user.id), conn
            )
            await execute(
                "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND token_hash <> ? "
                "AND revoked_at IS NULL",
                (now, user.id, keep),
                conn,
            )
            rows = await fetch_dicts(
                "SELECT expires_at FROM sessions WHERE token_hash = ?", (keep,), conn
            )
        user.password_hash = new_hash
        self.sessions.forget_user(user.id)
        expires = rows[0]["expires_at"]
        await self.publish(SessionsRevoked(user.id, keep))
        return expires if isinstance(expires, datetime) else datetime.fromisoformat(expires)

    async def session(self, token: str) -> models.Session | None:
        """The live session of a token (with its user), or None: unknown, expired or revoked."""
        if not token or len(token) > 200:
            return None
        # Tortoise's filter(...).select_related("user").first(), as one plain statement: ~0.9 ms
        # of CPU each, where this is ~0.15 ms (every session cache miss, every socket's check).
        rows = await fetch_dicts(_session_with_user(), (token_hash(token), self.clock()))
        if not rows:
            return None
        row = rows[0]
        session = models.Session._init_from_db(
            **{column: row["_s_" + column] for column in _columns(models.Session)}
        )
        session.user = models.User._init_from_db(
            **{column: row[column] for column in _columns(models.User)}
        )
        return session

    async def authenticate(self, token: str) -> models.User | None:
        """The user of a live session token, or None (unknown, expired or revoked); from the
        session cache when it has the token (accounts.sessions)."""
        if not token or len(token) > 200:
            return None
        if not self.sessions.enabled:
            session = await self.session(token)
            return session.user if session else None
        hashed = token_hash(token)
        now = self.clock()
        cached = self.sessions.get(hashed, now)
        if cached is not None:
            return cached
        return await self._read_and_keep(token, hashed, now)

    def cached_user(self, token: str) -> models.User | None:
        """The user of ``token`` when the session cache holds it (a copy, as from
        :meth:`authenticate`), without waiting for anything; None otherwise: then only
        :meth:`authenticate` can say. A caller that would wrap ``authenticate`` in a timeout
        (a task and a timer) can skip both for the requests the cache answers."""
        if not token or len(token) > 200 or not self.sessions.enabled:
            return None
        return self.sessions.get(token_hash(token), self.clock())

    async def _read_and_keep(self, token: str, hashed: str, now: datetime) -> models.User | None:
        """A cache miss: the session read, and kept unless a revocation moved the cache on."""
        generation = self.sessions.generation
        session = await self.session(token)
        if session is None:
            return None
        self.sessions.put(hashed, session.user, session.expires_at, now, generation)
        return session.user

    async def _issue(
        self, conn: BaseDBAsyncClient, user: models.User, now: datetime
    ) -> IssuedSession:
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=self.settings.session_ttl_seconds)
        await models.Session.create(
            user_id=user.id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=expires,
            using_db=conn,
        )
        return IssuedSession(token, expires, user)


async def purge_sessions(now: datetime, *, grace: timedelta, batch_rows: int) -> int:
    """Delete the sessions that expired ``grace`` or longer before ``now`` (housekeeping's
    ``purge_sessions`` job); the rows deleted, at most ``batch_rows`` per statement.

    An expired session already authenticates no one (:meth:`Accounts.session`); the grace
    keeps a session that a request authenticated a moment before it expired (and reads again,
    as ``change_password`` does) from vanishing under it, whatever another worker's clock says.
    """
    return await delete_in_batches("sessions", "expires_at <= ?", (now - grace,), batch_rows)
