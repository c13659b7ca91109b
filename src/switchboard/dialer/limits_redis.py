"""Line limits kept in Redis so several engine processes share them.

Every check-and-take runs inside one Lua script, so two processes can never both take the last
slot. A decision is one round trip with a dozen arguments whatever the number of lines: the lines
and their limits travel as one argument (built once per set of lines) and the script derives each
line's keys (all under the deployment's hash tag, so a Redis Cluster keeps them in one slot). Time is passed in by the caller from `clock.now()` (epoch seconds) rather than read from
Redis: production processes share the wall clock, and simulated campaigns share the virtual one.

Keys (under `{prefix}`, hash-tagged so a Redis Cluster keeps them in one slot):
  state              HASH a:{line} -> calls on the line (inbound and outbound), s:{scenario} -> calls
  leases             ZSET "{line}|{scenario}|{token}" -> lease expiry   every held slot
  inwait             ZSET "{line}|{token}" -> heartbeat     inbound callers waiting (they block outbound)
  day:{d}            HASH {line} -> starts on local date d  (expires a day after d ends)
  line:{id}:minute   ZSET token -> start time     sliding 60 s window
  scn:{name}:minute / scn:{name}:day:{d}            per-scenario windows
  bucket             theoretical arrival time      global originations per second (GCRA)
  lineset:{hash}     the lines and their limits    written once per set of lines
A decision reads every line's calls and day count with two HMGETs, whatever the number of lines;
only the least-loaded candidates' minute windows are looked at. A crashed process's slots expire
with their lease (`lease_seconds`): each script first gives back the slots whose lease ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

import redis.asyncio as aioredis

from switchboard import clock
from switchboard.dialer.lines import Busy, DayClock, Grant, LineLoad, OutboundLine, ScenarioLimit, day_key

log = logging.getLogger(__name__)

_EXPIRE_LEASES = """
local function expire_leases(state, leases, now_fmt)
  local gone = redis.call('ZRANGEBYSCORE', leases, '-inf', now_fmt, 'LIMIT', 0, 500)
  for _, member in ipairs(gone) do
    local line, scn = string.match(member, '^([^|]*)|([^|]*)|')
    if line and tonumber(redis.call('HGET', state, 'a:' .. line) or '0') > 0 then
      redis.call('HINCRBY', state, 'a:' .. line, -1)
    end
    if scn and scn ~= '' and tonumber(redis.call('HGET', state, 's:' .. scn) or '0') > 0 then
      redis.call('HINCRBY', state, 's:' .. scn, -1)
    end
    redis.call('ZREM', leases, member)
  end
end
"""

# KEYS: lineset ("lease_secs,interval,burst" then "id,conc,per_min,per_day" per line, ';'-separated);
# every other key is derived from its name (same hash tag).
# ARGV: now, token, sc_conc, sc_min, sc_day, day_left, scenario name, local date
_ACQUIRE_OUTBOUND = _EXPIRE_LEASES + """
local spec = redis.call('GET', KEYS[1])
if not spec then return {-1} end
local base = string.match(KEYS[1], '^(.*):lineset:')
local now = tonumber(ARGV[1])
local now_s = ARGV[1]
local token = ARGV[2]
local sc_conc = tonumber(ARGV[3])
local sc_min = tonumber(ARGV[4])
local sc_day = tonumber(ARGV[5])
local day_left = tonumber(ARGV[6])
local scn = ARGV[7]
local date = ARGV[8]
local lease_secs, interval, burst, lines = string.match(spec, '^([^,]+),([^,]+),([^;]+);(.*)$')
lease_secs, interval, burst = tonumber(lease_secs), tonumber(interval), tonumber(burst)
local lease_until = string.format('%.6f', now + lease_secs)
local bucket = base .. ':bucket'
local scn_minute, scn_day = base .. ':scn:' .. scn .. ':minute', base .. ':scn:' .. scn .. ':day:' .. date
local state, leases, inwait, dayh = base .. ':state', base .. ':leases', base .. ':inwait', base .. ':day:' .. date
local eps = 1e-6
local min_wait = 1e-3
local now_fmt = string.format('%.6f', now)
local cutoff = string.format('%.6f', now - 60 + eps)
expire_leases(state, leases, now_fmt)

local limited = sc_conc >= 0 or sc_min >= 0 or sc_day >= 0
local gwait = 0
local reason = ''
if limited then
  redis.call('ZREMRANGEBYSCORE', scn_minute, '-inf', cutoff)
  if sc_conc >= 0 and tonumber(redis.call('HGET', state, 's:' .. scn) or '0') >= sc_conc then
    gwait = -1
    reason = 'scenario at its concurrent limit'
  elseif sc_day >= 0 and tonumber(redis.call('GET', scn_day) or '0') >= sc_day then
    gwait = day_left + min_wait
    reason = 'scenario at its per-day limit'
  elseif sc_min >= 0 and redis.call('ZCARD', scn_minute) >= sc_min then
    local oldest = redis.call('ZRANGE', scn_minute, 0, 0, 'WITHSCORES')
    gwait = math.max(tonumber(oldest[2]) + 60 - now, min_wait)
    reason = 'scenario at its per-minute limit'
  end
end
local tat = nil
if gwait >= 0 and interval > 0 then
  local raw = redis.call('GET', bucket)
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

-- every line's calls and today's starts in two round trips inside Redis
local ids, mcs, pms, pds, afields = {}, {}, {}, {}, {}
for id, mc, pm, pd in string.gmatch(lines, '([^,;]+),(%d+),(%d+),(%d+)') do
  ids[#ids + 1] = id
  mcs[#ids], pms[#ids], pds[#ids] = tonumber(mc), tonumber(pm), tonumber(pd)
  afields[#ids] = 'a:' .. id
end
local actives = redis.call('HMGET', state, unpack(afields))
local days = redis.call('HMGET', dayh, unpack(ids))
redis.call('ZREMRANGEBYSCORE', inwait, '-inf', now_fmt)
local blocked = {}
for _, member in ipairs(redis.call('ZRANGE', inwait, 0, -1)) do
  blocked[string.match(member, '^([^|]*)|')] = true
end

local candidates = {}
local minwait = -1
for i = 1, #ids do
  local active = tonumber(actives[i] or '0')
  if not blocked[ids[i]] and active < mcs[i] then
    if tonumber(days[i] or '0') >= pds[i] then
      local w = day_left + min_wait
      if minwait < 0 or w < minwait then minwait = w end
    else
      candidates[#candidates + 1] = {active / mcs[i], i}
    end
  end
end
table.sort(candidates, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
local best = -1
for _, c in ipairs(candidates) do
  local i = c[2]
  local km = base .. ':line:' .. ids[i] .. ':minute'
  redis.call('ZREMRANGEBYSCORE', km, '-inf', cutoff)
  if redis.call('ZCARD', km) < pms[i] then
    best = i
    minwait = 0
    break
  end
  local o = redis.call('ZRANGE', km, 0, 0, 'WITHSCORES')
  local w = math.max(tonumber(o[2]) + 60 - now, min_wait)
  if minwait < 0 or w < minwait then minwait = w end
end

if gwait == 0 and best > 0 then
  local id = ids[best]
  local member = id .. '|' .. (limited and scn or '') .. '|' .. token
  redis.call('HINCRBY', state, 'a:' .. id, 1)
  redis.call('ZADD', leases, lease_until, member)
  local km = base .. ':line:' .. id .. ':minute'
  redis.call('ZADD', km, now_s, token)
  redis.call('EXPIRE', km, 120)
  redis.call('HINCRBY', dayh, id, 1)
  redis.call('EXPIRE', dayh, math.ceil(day_left) + 86400)
  if limited then
    redis.call('HINCRBY', state, 's:' .. scn, 1)
    redis.call('ZADD', scn_minute, now_s, token)
    redis.call('EXPIRE', scn_minute, 120)
    redis.call('INCR', scn_day)
    redis.call('EXPIRE', scn_day, math.ceil(day_left) + 86400)
  end
  if interval > 0 then
    local b = now
    if tat and tat > now then b = tat end
    redis.call('SET', bucket, string.format('%.6f', b + interval), 'EX', 3600)
  end
  return {1, best - 1, member}
end
if reason == '' then reason = 'no line can take a call now' end
local wait = -1
if gwait >= 0 and minwait >= 0 then wait = math.max(gwait, minwait) end
return {0, tostring(wait), reason}
"""

# KEYS: state, leases, inwait   ARGV: now, line, token, lease_until, max_concurrent, heartbeat
_ACQUIRE_INBOUND = _EXPIRE_LEASES + """
local state, leases, inwait = KEYS[1], KEYS[2], KEYS[3]
expire_leases(state, leases, ARGV[1])
redis.call('ZREMRANGEBYSCORE', inwait, '-inf', ARGV[1])
local waiter = ARGV[2] .. '|' .. ARGV[3]
if tonumber(redis.call('HGET', state, 'a:' .. ARGV[2]) or '0') < tonumber(ARGV[5]) then
  redis.call('HINCRBY', state, 'a:' .. ARGV[2], 1)
  redis.call('ZADD', leases, ARGV[4], ARGV[2] .. '||' .. ARGV[3])
  redis.call('ZREM', inwait, waiter)
  return 1
end
redis.call('ZADD', inwait, ARGV[6], waiter)
return 0
"""

# KEYS: state, leases, channel   ARGV: member, publisher id
_RELEASE = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  local line, scn = string.match(ARGV[1], '^([^|]*)|([^|]*)|')
  if tonumber(redis.call('HGET', KEYS[1], 'a:' .. line) or '0') > 0 then
    redis.call('HINCRBY', KEYS[1], 'a:' .. line, -1)
  end
  if scn ~= '' and tonumber(redis.call('HGET', KEYS[1], 's:' .. scn) or '0') > 0 then
    redis.call('HINCRBY', KEYS[1], 's:' .. scn, -1)
  end
end
redis.call('PUBLISH', KEYS[3], ARGV[2])
return 1
"""

# KEYS: state, leases, channel, line minute, day hash, scn minute, scn day
# ARGV: member, publisher id, token
_REFUND = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  local line, scn = string.match(ARGV[1], '^([^|]*)|([^|]*)|')
  if tonumber(redis.call('HGET', KEYS[1], 'a:' .. line) or '0') > 0 then
    redis.call('HINCRBY', KEYS[1], 'a:' .. line, -1)
  end
  redis.call('ZREM', KEYS[4], ARGV[3])
  if tonumber(redis.call('HGET', KEYS[5], line) or '0') > 0 then redis.call('HINCRBY', KEYS[5], line, -1) end
  if scn ~= '' then
    if tonumber(redis.call('HGET', KEYS[1], 's:' .. scn) or '0') > 0 then
      redis.call('HINCRBY', KEYS[1], 's:' .. scn, -1)
    end
    redis.call('ZREM', KEYS[6], ARGV[3])
    if tonumber(redis.call('GET', KEYS[7]) or '0') > 0 then redis.call('DECR', KEYS[7]) end
  end
end
redis.call('PUBLISH', KEYS[3], ARGV[2])
return 1
"""

# KEYS: state, leases, inwait, line minute, day hash   ARGV: now, line, minute cutoff
_LOAD = _EXPIRE_LEASES + """
expire_leases(KEYS[1], KEYS[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
local waiting = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if string.match(member, '^([^|]*)|') == ARGV[2] then waiting = waiting + 1 end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[3])
return {tonumber(redis.call('HGET', KEYS[1], 'a:' .. ARGV[2]) or '0'), waiting, redis.call('ZCARD', KEYS[4]),
        tonumber(redis.call('HGET', KEYS[5], ARGV[2]) or '0')}
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
        self._release = client.register_script(_RELEASE)
        self._load = client.register_script(_LOAD)
        self._refund = client.register_script(_REFUND)
        self._state, self._leases, self._inwait = (f"{self._base}:state", f"{self._base}:leases",
                                                   f"{self._base}:inwait")
        self._released = asyncio.Event()
        self._channel = f"{prefix}:released"
        self._id = uuid.uuid4().hex  # our own releases are signalled locally; skip their echo
        self._tokens = itertools.count(1)  # slot tokens: this limiter's id + a counter
        self._interval = _num(1.0 / self.rate if self.rate > 0 else 0.0)
        self._specs: dict[tuple[OutboundLine, ...], tuple[str, str]] = {}
        # The dialer replaces its list of lines when the panel changes them (never edits it in place).
        self._last_spec: tuple[Sequence[OutboundLine], tuple[str, str]] | None = None
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, *, socket_timeout: float | None = 5.0, **kwargs: Any) -> RedisLineLimiter:
        """`socket_timeout=None` on the simulator's virtual clock: there a read timeout would be a
        virtual timer (round-trips themselves hold the virtual clock, see `clock.real_io`)."""
        # One connection for decisions (no pool round per command); the release listener opens
        # its own.
        client = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            single_connection_client=True,
        )
        return cls(client, **kwargs)

    def _spec(self, lines: Sequence[OutboundLine]) -> tuple[str, str]:
        """(key, value) of the lines and their limits, stored in Redis under a key named by their
        hash: a decision sends a dozen arguments whatever the number of lines (the script reads
        the set and derives each line's keys, all under this deployment's hash tag)."""
        last = self._last_spec
        if last is not None and last[0] is lines:  # the dialer's own list, unchanged: no hashing
            return last[1]
        key = tuple(lines)
        found = self._specs.get(key)
        if found is None:
            for line in lines:
                if any(ch in line.id for ch in ",;|"):
                    raise ValueError(f"line id {line.id!r} may not contain ',', ';' or '|'")
            spec = f"{self.lease_seconds},{self._interval},{self.burst};" + ";".join(
                f"{ln.id},{ln.limits.max_concurrent},{ln.limits.per_minute},{ln.limits.per_day}" for ln in lines)
            digest = hashlib.sha1(spec.encode()).hexdigest()[:16]  # noqa: S324 - a name, not security
            if len(self._specs) > 64:
                self._specs.clear()
            found = self._specs[key] = (f"{self._base}:lineset:{digest}", spec)
        self._last_spec = (lines, found)
        return found

    async def acquire_outbound(
        self, lines: Sequence[OutboundLine], scenario: ScenarioLimit | None = None
    ) -> Grant | Busy:
        if not lines:
            return Busy(retry_after=None, reason="no outbound lines")
        wall = clock.now()
        now = wall.timestamp()
        date, day_left = self._days.at(wall)
        limited = scenario is not None and scenario.limited
        spec_key, spec = self._spec(lines)
        keys = [spec_key]
        args: list[str | int] = [
            _num(now),
            f"{self._id}{next(self._tokens)}",
            scenario.max_concurrent if limited and scenario and scenario.max_concurrent is not None else -1,
            scenario.per_minute if limited and scenario and scenario.per_minute is not None else -1,
            scenario.per_day if limited and scenario and scenario.per_day is not None else -1,
            _num(day_left),
            scenario.name if scenario else "-",
            date,
        ]
        with clock.real_io():
            result = await self._acquire_out(keys=keys, args=args)
            if int(result[0]) == -1:  # the line set is not in Redis (first use, or Redis restarted)
                await self.client.set(spec_key, spec)
                result = await self._acquire_out(keys=keys, args=args)
        if int(result[0]) == 1:
            # The token is the lease's own name ("line|scenario|id"): release and refund need no more.
            return Grant(line=lines[int(result[1])], token=str(result[2]), direction="outbound", at=wall,
                         scenario=scenario.name if scenario else None)
        wait = float(result[1])
        reason = result[2].decode() if isinstance(result[2], bytes) else str(result[2])
        return Busy(retry_after=None if wait < 0 else wait, reason=reason)

    async def acquire_inbound(self, line: OutboundLine, timeout: float | None = None) -> Grant | None:
        token = f"{self._id}{next(self._tokens)}"
        keys = [self._state, self._leases, self._inwait]
        deadline = None if timeout is None else clock.monotonic() + timeout
        waiter = f"{line.id}|{token}"
        try:
            while True:
                now = clock.now().timestamp()
                with clock.real_io():
                    took = await self._acquire_in(keys=keys, args=[
                        _num(now), line.id, token, _num(now + self.lease_seconds), line.limits.max_concurrent,
                        _num(now + self.inbound_heartbeat)])
                if int(took) == 1:
                    return Grant(line=line, token=f"{line.id}||{token}", direction="inbound",
                                 at=datetime.fromtimestamp(now, UTC))
                remaining = None if deadline is None else deadline - clock.monotonic()
                if remaining is not None and remaining <= 0:
                    with clock.real_io():
                        await self.client.zrem(self._inwait, waiter)
                    return None
                # Re-register well before the heartbeat lapses, so outbound stays blocked meanwhile.
                beat = self.inbound_heartbeat / 2
                await self.wait_for_release(beat if remaining is None else min(remaining, beat))
        except asyncio.CancelledError:
            await asyncio.shield(self.client.zrem(self._inwait, waiter))
            raise

    async def release(self, grant: Grant) -> None:
        with clock.real_io():
            await self._release(keys=[self._state, self._leases, self._channel], args=[grant.token, self._id])
        self._signal()

    async def refund(self, grant: Grant) -> None:
        """One script: the slot, its minute-window entry and its day count (line and scenario) are
        taken back, only if the slot was still held (so a refund after a release does nothing)."""
        date, _ = day_key(grant.at, self.tz)
        scen = f"{self._base}:scn:{grant.scenario or '-'}"
        keys = [self._state, self._leases, self._channel, f"{self._base}:line:{grant.line.id}:minute",
                f"{self._base}:day:{date}", f"{scen}:minute", f"{scen}:day:{date}"]
        with clock.real_io():
            await self._refund(keys=keys, args=[grant.token, self._id, grant.token.rpartition("|")[2]])
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
        keys = [self._state, self._leases, self._inwait, f"{self._base}:line:{line.id}:minute",
                f"{self._base}:day:{date}"]
        with clock.real_io():
            active, waiting, minute, day = await self._load(keys=keys, args=[_num(now), line.id,
                                                                             _num(now - 60 + 1e-6)])
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
