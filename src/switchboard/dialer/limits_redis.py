"""Line limits kept in Redis so several engine processes share them.

Every check-and-take runs inside one Lua script, so two processes can never both take the last
slot. Time is passed in by the caller from `clock.now()` (epoch seconds) rather than read from
Redis: production processes share the wall clock, and simulated campaigns share the virtual one.

Keys (under `{prefix}`, hash-tagged so a Redis Cluster keeps them in one slot):
  line:{id}:active   ZSET token -> lease expiry   concurrent calls, inbound and outbound
  line:{id}:inwait   ZSET token -> heartbeat      inbound callers waiting (they block outbound)
  line:{id}:minute   ZSET token -> start time     sliding 60 s window
  line:{id}:day:{d}  counter for local date d     expires a day after d ends
  scn:{name}:active / scn:{name}:minute / scn:{name}:day:{d}   per-scenario limits
  bucket             theoretical arrival time      global originations per second (GCRA)
A crashed process's slots expire with their lease (`lease_seconds`), so they never leak forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

import redis.asyncio as aioredis

from switchboard import clock
from switchboard.dialer.lines import Busy, DayClock, Grant, LineLoad, OutboundLine, ScenarioLimit, day_key

log = logging.getLogger(__name__)

_ACQUIRE_OUTBOUND = """
local now = tonumber(ARGV[1])
local now_s = ARGV[1]
local token = ARGV[2]
local lease_until = ARGV[3]
local lease_secs = tonumber(ARGV[4])
local interval = tonumber(ARGV[5])
local burst = tonumber(ARGV[6])
local sc_conc = tonumber(ARGV[7])
local sc_min = tonumber(ARGV[8])
local n = tonumber(ARGV[9])
local day_left = tonumber(ARGV[10])
local sc_day = tonumber(ARGV[11])
local eps = 1e-6
local min_wait = 1e-3
local now_fmt = string.format('%.6f', now)
local cutoff = string.format('%.6f', now - 60 + eps)

local gwait = 0
local reason = ''
if sc_conc >= 0 or sc_min >= 0 or sc_day >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_fmt)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', cutoff)
  if sc_conc >= 0 and redis.call('ZCARD', KEYS[2]) >= sc_conc then
    gwait = -1
    reason = 'scenario at its concurrent limit'
  elseif sc_day >= 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= sc_day then
    gwait = day_left + min_wait
    reason = 'scenario at its per-day limit'
  elseif sc_min >= 0 and redis.call('ZCARD', KEYS[3]) >= sc_min then
    local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    gwait = math.max(tonumber(oldest[2]) + 60 - now, min_wait)
    reason = 'scenario at its per-minute limit'
  end
end
local tat = nil
if gwait >= 0 and interval > 0 then
  local raw = redis.call('GET', KEYS[1])
  if raw then
    tat = tonumber(raw)
    local allowed = tat - (burst - 1) * interval
    if now < allowed - eps then
      local w = math.max(allowed - now, min_wait)
      if w > gwait then
        gwait = w
        reason = 'originations-per-second limit'
      end
    end
  end
end

local best = -1
local bk1 = 0
local bk2 = 0
local minwait = -1
for i = 0, n - 1 do
  local ka, kw, km, kd = KEYS[5 + i * 4], KEYS[6 + i * 4], KEYS[7 + i * 4], KEYS[8 + i * 4]
  local mc, pm, pd = tonumber(ARGV[12 + i * 3]), tonumber(ARGV[13 + i * 3]), tonumber(ARGV[14 + i * 3])
  redis.call('ZREMRANGEBYSCORE', ka, '-inf', now_fmt)
  redis.call('ZREMRANGEBYSCORE', kw, '-inf', now_fmt)
  redis.call('ZREMRANGEBYSCORE', km, '-inf', cutoff)
  local active = redis.call('ZCARD', ka)
  if redis.call('ZCARD', kw) == 0 and active < mc then
    local w = 0
    local dc = tonumber(redis.call('GET', kd) or '0')
    if dc >= pd then w = day_left + min_wait end
    local mcount = redis.call('ZCARD', km)
    if mcount >= pm then
      local o = redis.call('ZRANGE', km, 0, 0, 'WITHSCORES')
      w = math.max(w, tonumber(o[2]) + 60 - now, min_wait)
    end
    if minwait < 0 or w < minwait then minwait = w end
    if w == 0 then
      local r1, r2 = active / mc, mcount / pm
      if best < 0 or r1 < bk1 or (r1 == bk1 and r2 < bk2) then
        best = i
        bk1 = r1
        bk2 = r2
      end
    end
  end
end

if gwait == 0 and best >= 0 then
  local ka, km, kd = KEYS[5 + best * 4], KEYS[7 + best * 4], KEYS[8 + best * 4]
  redis.call('ZADD', ka, lease_until, token)
  redis.call('EXPIRE', ka, lease_secs)
  redis.call('ZADD', km, now_s, token)
  redis.call('EXPIRE', km, 120)
  redis.call('INCR', kd)
  redis.call('EXPIRE', kd, math.ceil(day_left) + 86400)
  if sc_conc >= 0 then
    redis.call('ZADD', KEYS[2], lease_until, token)
    redis.call('EXPIRE', KEYS[2], lease_secs)
  end
  if sc_min >= 0 then
    redis.call('ZADD', KEYS[3], now_s, token)
    redis.call('EXPIRE', KEYS[3], 120)
  end
  if sc_conc >= 0 or sc_min >= 0 or sc_day >= 0 then
    redis.call('INCR', KEYS[4])
    redis.call('EXPIRE', KEYS[4], math.ceil(day_left) + 86400)
  end
  if interval > 0 then
    local base = now
    if tat and tat > now then base = tat end
    redis.call('SET', KEYS[1], string.format('%.6f', base + interval), 'EX', 3600)
  end
  return {1, best}
end
if reason == '' then reason = 'no line can take a call now' end
local wait = -1
if gwait >= 0 and minwait >= 0 then wait = math.max(gwait, minwait) end
return {0, tostring(wait), reason}
"""

_REFUND = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  if tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then redis.call('DECR', KEYS[3]) end
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  if tonumber(redis.call('GET', KEYS[6]) or '0') > 0 then redis.call('DECR', KEYS[6]) end
end
redis.call('PUBLISH', KEYS[7], ARGV[2])
return removed
"""

_ACQUIRE_INBOUND = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
redis.call('EXPIRE', KEYS[2], 120)
return 0
"""

_LOAD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
        tonumber(redis.call('GET', KEYS[4]) or '0')}
"""


def _num(value: float) -> str:
    return repr(float(value))


class RedisLineLimiter:
    """`LineLimiter` whose counters live in Redis (`REDIS_URL`), shared by every engine process
    using the same `prefix`.

    Every release is published on `{prefix}:released`; each limiter listens there, so a call ending
    in another process wakes this process's dialer at once. `poll_interval` is only a safety net
    (a missed message, a crashed process's lease running out).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        originations_per_second: float = 0.0,
        tz: tzinfo = UTC,
        burst: int = 1,
        prefix: str = "switchboard:limits",
        lease_seconds: int = 4 * 3600,
        poll_interval: float = 5.0,
        inbound_heartbeat: float = 5.0,
    ) -> None:
        self.client = client
        self.rate = originations_per_second
        self.burst = max(1, burst)
        self.tz = tz
        self._days = DayClock(tz)
        self.prefix = prefix
        # A hash tag keeps every key of one deployment in one cluster slot, as a Lua script needs.
        self._base = "{" + prefix + "}"
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.inbound_heartbeat = inbound_heartbeat
        self._acquire_out = client.register_script(_ACQUIRE_OUTBOUND)
        self._acquire_in = client.register_script(_ACQUIRE_INBOUND)
        self._load = client.register_script(_LOAD)
        self._refund = client.register_script(_REFUND)
        self._released = asyncio.Event()
        self._channel = f"{prefix}:released"
        self._id = uuid.uuid4().hex  # our own releases are signalled locally; skip their echo
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, *, socket_timeout: float | None = 5.0, **kwargs: Any) -> RedisLineLimiter:
        """`socket_timeout=None` on the simulator's virtual clock: there a read timeout would be a
        virtual timer (round-trips themselves hold the virtual clock, see `clock.real_io`)."""
        client = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        return cls(client, **kwargs)

    def _line_keys(self, line: OutboundLine, date: str) -> list[str]:
        base = f"{self._base}:line:{line.id}"
        return [f"{base}:active", f"{base}:inwait", f"{base}:minute", f"{base}:day:{date}"]

    async def acquire_outbound(
        self, lines: Sequence[OutboundLine], scenario: ScenarioLimit | None = None
    ) -> Grant | Busy:
        if not lines:
            return Busy(retry_after=None, reason="no outbound lines")
        wall = clock.now()
        now = wall.timestamp()
        date, day_left = self._days.at(wall)
        token = uuid.uuid4().hex
        limited = scenario is not None and scenario.limited
        scen = f"{self._base}:scn:{scenario.name if scenario else '-'}"
        keys = [f"{self._base}:bucket", f"{scen}:active", f"{scen}:minute", f"{scen}:day:{date}"]
        args: list[str | int] = [
            _num(now),
            token,
            _num(now + self.lease_seconds),
            self.lease_seconds,
            _num(1.0 / self.rate if self.rate > 0 else 0.0),
            self.burst,
            scenario.max_concurrent if limited and scenario and scenario.max_concurrent is not None else -1,
            scenario.per_minute if limited and scenario and scenario.per_minute is not None else -1,
            len(lines),
            _num(day_left),
            scenario.per_day if limited and scenario and scenario.per_day is not None else -1,
        ]
        for line in lines:
            keys.extend(self._line_keys(line, date))
            args.extend([line.limits.max_concurrent, line.limits.per_minute, line.limits.per_day])
        with clock.real_io():
            result = await self._acquire_out(keys=keys, args=args)
        if int(result[0]) == 1:
            line = lines[int(result[1])]
            return Grant(
                line=line,
                token=token,
                direction="outbound",
                at=wall,
                scenario=scenario.name if scenario else None,
            )
        wait = float(result[1])
        reason = result[2].decode() if isinstance(result[2], bytes) else str(result[2])
        return Busy(retry_after=None if wait < 0 else wait, reason=reason)

    async def acquire_inbound(self, line: OutboundLine, timeout: float | None = None) -> Grant | None:
        token = uuid.uuid4().hex
        keys = self._line_keys(line, "-")[:2]
        deadline = None if timeout is None else clock.monotonic() + timeout
        try:
            while True:
                now = clock.now().timestamp()
                with clock.real_io():
                    took = await self._acquire_in(
                        keys=keys,
                        args=[
                            _num(now),
                            token,
                            _num(now + self.lease_seconds),
                            line.limits.max_concurrent,
                            _num(now + self.inbound_heartbeat),
                            self.lease_seconds,
                        ],
                    )
                if int(took) == 1:
                    return Grant(
                        line=line, token=token, direction="inbound", at=datetime.fromtimestamp(now, UTC)
                    )
                remaining = None if deadline is None else deadline - clock.monotonic()
                if remaining is not None and remaining <= 0:
                    with clock.real_io():
                        await self.client.zrem(keys[1], token)
                    return None
                # Re-register well before the heartbeat lapses, so outbound stays blocked meanwhile.
                beat = self.inbound_heartbeat / 2
                await self.wait_for_release(beat if remaining is None else min(remaining, beat))
        except asyncio.CancelledError:
            await asyncio.shield(self.client.zrem(keys[1], token))
            raise

    async def release(self, grant: Grant) -> None:
        with clock.real_io():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.zrem(f"{self._base}:line:{grant.line.id}:active", grant.token)
                if grant.scenario is not None:
                    pipe.zrem(f"{self._base}:scn:{grant.scenario}:active", grant.token)
                pipe.publish(self._channel, self._id)
                await pipe.execute()
        self._signal()

    async def refund(self, grant: Grant) -> None:
        """One script: the slot, its minute-window entry and its day count (line and scenario) are
        taken back, only if the slot was still held (so a refund after a release does nothing)."""
        date, _ = day_key(grant.at, self.tz)
        line = f"{self._base}:line:{grant.line.id}"
        scen = f"{self._base}:scn:{grant.scenario or '-'}"
        keys = [f"{line}:active", f"{line}:minute", f"{line}:day:{date}", f"{scen}:active", f"{scen}:minute",
                f"{scen}:day:{date}", self._channel]
        with clock.real_io():
            await self._refund(keys=keys, args=[grant.token, self._id])
        self._signal()

    def _signal(self) -> None:
        self._released.set()
        self._released = asyncio.Event()

    async def _listen(self) -> None:
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                with clock.real_io():
                    await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is not None and message.get("data") != self._id:
                        self._signal()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - connection lost: polling covers the gap until we resubscribe
                log.warning(
                    "release listener on %s lost its connection (%s); resubscribing", self._channel, exc
                )
                await asyncio.sleep(1.0)
            finally:
                await asyncio.shield(pubsub.aclose())

    async def wait_for_release(self, timeout: float | None) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.ensure_future(self._listen())
        limit = self.poll_interval if timeout is None else min(max(timeout, 0.0), self.poll_interval)
        try:
            await asyncio.wait_for(self._released.wait(), limit)
        except TimeoutError:
            pass

    async def load(self, line: OutboundLine) -> LineLoad:
        wall = clock.now()
        now = wall.timestamp()
        date, _ = day_key(wall, self.tz)
        with clock.real_io():
            active, waiting, minute, day = await self._load(
                keys=self._line_keys(line, date), args=[_num(now), _num(now - 60 + 1e-6)]
            )
        return LineLoad(int(active), int(waiting), int(minute), int(day))

    async def reset(self) -> None:
        """Delete every key under `prefix` (tests and `switchboard` maintenance)."""
        async for key in self.client.scan_iter(match=f"{self._base}:*", count=500):
            await self.client.delete(key)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self.client.aclose()
