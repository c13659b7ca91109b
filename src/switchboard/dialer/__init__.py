"""The outbound dialer: which contact, on which line, when, and when to stop.

Building blocks (each one job) and how the loop uses them, per contact:

    decision = await compliance.check(contact_state, clock.now())     # compliance.py
        NotBefore(at) -> store next_attempt_at = at; Never(reason) -> close the contact
    await health.wait_running()                                         # health.py: the pause gate
    grant = await acquire_line(limiter, lines, scenario_limit, stop=stop)   # selection.py
        (least-loaded eligible line; sleeps until a limit frees or a call ends; None on stop)
    dial = template.render(line_number=grant.line.phone_number, customer=phone, trunk=trunk)
    try: originate and run the call (attempted_at = grant.at)
    finally: await limiter.release(grant)                               # lines.LineLimiter

Inbound calls take a slot with `await limiter.acquire_inbound(line)` (waiting, they block new
outbound calls on that line) and `release` it at hang-up. Limits live in-process
(`limits_memory`) or in Redis (`limits_redis`); `limits.build_limiter(settings)` picks.
"""
