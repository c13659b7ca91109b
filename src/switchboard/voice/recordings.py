"""Keeping each streamed utterance for review, off the turn's path.

A streamed `record` hands its audio to the engine at once; the WAV copy under
`RECORDINGS_DIR/<call id>/` is written afterwards by one background writer thread shared by every
call, so no turn waits on a disk (the path is known up front and the file appears shortly after).
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from switchboard.speech.audio import Audio, write_wav

log = logging.getLogger(__name__)


class RecordingKeeper:
    """Writes WAVs in the background, in order; `flush()` waits for what was queued (tests, shutdown)."""

    def __init__(self, directory: Path, *, max_queued: int = 1000) -> None:
        self.directory = Path(directory)
        self._queue: queue.Queue[tuple[Path, Audio] | None] = queue.Queue(maxsize=max_queued)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0

    def path_for(self, call_id: str, name: str) -> Path:
        return self.directory / call_id / f"{name}.wav"

    def keep(self, call_id: str, name: str, audio: Audio) -> str | None:
        """Queue a copy of `audio`; returns where it will be (None when the writer is overloaded)."""
        path = self.path_for(call_id, name)
        self._start()
        try:
            self._queue.put_nowait((path, audio))
        except queue.Full:
            self.dropped += 1
            log.warning("recording writer overloaded; not keeping %s", path)
            return None
        return str(path)

    def flush(self) -> None:
        self._queue.join()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="recordings", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                path, audio = item
                try:
                    write_wav(path, audio)
                    self.written += 1
                except OSError as exc:
                    log.warning("could not keep streamed utterance %s: %s", path, exc)
            finally:
                self._queue.task_done()
