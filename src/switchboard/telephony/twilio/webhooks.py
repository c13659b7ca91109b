"""The routes Twilio calls: `POST /twilio/voice`, `/twilio/status`, `/twilio/dial`,
`/twilio/dial/answered` and the media WebSocket `/twilio/media`.

They are mounted on the panel's server (one public URL fronts everything) but are not the panel's:
they authenticate by `X-Twilio-Signature`, never by the panel's Bearer token. The media WebSocket
is accepted only with a one-time stream token that a signed voice webhook issued.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.datastructures import FormData

from switchboard.telephony.twilio import twiml
from switchboard.telephony.twilio.media import MediaStreamError, TwilioMediaPort
from switchboard.telephony.twilio.models import DialAction, StatusCallback, VoiceRequest
from switchboard.telephony.twilio.signature import WebhookSigner

if TYPE_CHECKING:
    from switchboard.telephony.twilio.backend import TwilioBackend

log = logging.getLogger(__name__)

XML = "application/xml"
START_TIMEOUT = 10.0  # seconds a new media WebSocket may take to send `start`
POLICY_VIOLATION = 1008


def _parse(model: type, form: FormData):  # type: ignore[no-untyped-def]
    try:
        return model.model_validate(dict(form))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise HTTPException(400, f"bad {model.__name__}: {problems}") from exc


def _twiml(document: str) -> Response:
    return Response(document, media_type=XML)


def build_router(backend: TwilioBackend) -> APIRouter:
    router = APIRouter(prefix="/twilio", include_in_schema=False)
    signer = WebhookSigner(backend.config)

    @router.post("/voice")
    async def voice(request: Request) -> Response:
        form = await signer.verified_form(request)
        return _twiml(backend.on_voice(_parse(VoiceRequest, form), request.query_params.get("o")))

    @router.post("/status")
    async def status(request: Request) -> Response:
        form = await signer.verified_form(request)
        backend.on_status(_parse(StatusCallback, form), request.query_params.get("o"))
        return Response(status_code=204)

    @router.post("/dial")
    async def dial(request: Request) -> Response:
        form = await signer.verified_form(request)
        action = _parse(DialAction, form)
        return _twiml(backend.on_dial_action(request.query_params.get("call", ""), request.query_params.get("t", ""),
                                             action))

    @router.post("/dial/answered")
    async def dial_answered(request: Request) -> Response:
        form = await signer.verified_form(request)
        backend.on_operator_status(request.query_params.get("call", ""), request.query_params.get("t", ""),
                                   _parse(StatusCallback, form))
        return Response(status_code=204)

    @router.websocket("/media")
    async def media(websocket: WebSocket) -> None:
        await websocket.accept()
        client = websocket.client.host if websocket.client else "?"
        port = TwilioMediaPort(websocket)
        try:
            start = await asyncio.wait_for(port.handshake(), START_TIMEOUT)
        except (TimeoutError, WebSocketDisconnect, MediaStreamError) as exc:
            log.warning("twilio media stream from %s refused: %s", client, exc or "no start message")
            backend.rejected_streams += 1
            await _close(websocket)
            return
        call = backend.claim_stream(start.custom_parameters.get(twiml.STREAM_TOKEN, ""), start.call_sid)
        if call is None:
            log.warning("twilio media stream %s from %s refused: no call announced it (bad or used token)",
                        start.stream_sid, client)
            await _close(websocket)
            return
        leg = await backend.leg_factory(port, call)
        await call.run_stream(leg)
        await _close(websocket, 1000)

    return router


async def _close(websocket: WebSocket, code: int = POLICY_VIOLATION) -> None:
    try:
        await websocket.close(code)
    except (RuntimeError, WebSocketDisconnect):  # already closed
        pass
