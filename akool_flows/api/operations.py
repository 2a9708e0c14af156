"""The operations both clients offer, one `endpoints.Call` each.

`_run(call)` is the client's: `AkoolClient` returns the result, `AsyncAkoolClient` an awaitable.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from akool_flows.api import endpoints, v4
from akool_flows.api.endpoints import Call
from akool_flows.api.jobs import Job


class Operations:
    """Operations shared by both clients; `_run` returns a value (sync) or an awaitable (async)."""

    #: Refuse create fields the docs do not list (set by the client's constructor).
    strict: bool = False

    def _run(self, call: Call) -> Any:  # pragma: no cover - implemented by both clients
        raise NotImplementedError

    # --- jobs --------------------------------------------------------------------------------

    def submit(self, kind: str, /, **fields: Any) -> Any:
        """Create a job of `kind` with the docs' field names; returns a `Job` (its `_id`).

        A field the docs do not list is sent as given (one warning per kind and field), unless the
        client was made with ``strict=True``. A video translation into ``language="fr,de,ja"``
        makes one job per language: ``job.jobs`` lists them (``job.job_id`` is the first's)."""
        return self._run(endpoints.submit(kind, fields, strict=self.strict))

    def status(self, kind: str, job_id: str) -> Any:
        """Where job `job_id` stands, normalised (`JobStatus`)."""
        return self._run(endpoints.status(kind, job_id))

    def cancel(self, kind: str, job: Job | str) -> Any:
        """Cancel a job where the API allows it (face swap / re-age tasks, live sessions)."""
        return self._run(endpoints.cancel(kind, job))

    # --- account and catalogues ----------------------------------------------------------------

    def voices(self, from_: int | None = None) -> Any:
        return self._run(endpoints.voices(from_))

    def avatars(self, from_: int | None = None, type_: int | None = None, page: int | None = None,
                size: int | None = None) -> Any:
        return self._run(endpoints.avatars(from_, type_, page, size))

    def live_avatars(self, page: int | None = None, size: int | None = None) -> Any:
        return self._run(endpoints.live_avatars(page, size))

    def avatar_detail(self, avatar_record_id: str) -> Any:
        return self._run(endpoints.avatar_detail(avatar_record_id))

    def languages(self) -> Any:
        """Video translation languages: `[{"lang_code", "lang_name", "url"}]`."""
        return self._run(endpoints.languages())

    def credit_info(self) -> Any:
        """The account's credit balance (faceswap quota info)."""
        return self._run(endpoints.credit_info())

    def delete_results(self, ids: Iterable[str]) -> Any:
        return self._run(endpoints.delete_results(ids))

    def cancel_faceswap_jobs(self, task_ids: Iterable[str]) -> Any:
        return self._run(endpoints.cancel_faceswap_jobs(task_ids))

    def face_detect(self, *, image_url: str | None = None, img: str | None = None,
                    single_face: bool = False) -> Any:
        """Face landmarks; `.opts` is `landmarks_str[0]`, ready for sourceImage/targetImage."""
        return self._run(endpoints.face_detect(image_url=image_url, img=img, single_face=single_face))

    # --- image to video (v4) ------------------------------------------------------------------

    def image_to_video_batch(self, **fields: Any) -> Any:
        """``count`` videos of one image in one call (``model_name`` from `ai_models`); returns a
        `Job` whose ``jobs`` are the videos (poll them with ``statuses("image_to_video", ...)``)."""
        return self._run(v4.image_to_video_batch(fields, strict=self.strict))

    def update_video_audio(self, pre_video_id: str, audio_url: str, audio_type: int = 2) -> Any:
        """Add or replace the audio of a completed image-to-video result; a new ``image_to_video`` `Job`."""
        return self._run(v4.update_video_audio(pre_video_id, audio_url, audio_type))

    def image_to_video_effects(self) -> Any:
        """The effects an image-to-video job's ``effect_code`` may name."""
        return self._run(v4.image_to_video_effects())

    def ai_models(self, types: Iterable[int] = (1501,)) -> Any:
        """Generation models (type 1501: image to video) with their resolutions and durations."""
        return self._run(v4.ai_models(types))

    # --- v4 voices and knowledge bases ---------------------------------------------------------

    def translation_voices(self, language_code: str | None = None, page: int | None = None,
                           size: int | None = None) -> Any:
        """Voices for a video translation's ``voices_map``."""
        return self._run(v4.translation_voices(language_code, page, size))

    def streaming_voices(self, type_: int | None = None, page: int | None = None, size: int | None = None) -> Any:
        """Voices a live session can use (``voice_id``): type 1 your clones, 2 Akool's."""
        return self._run(v4.streaming_voices(type_, page, size))

    def knowledge_bases(self, page: int | None = None, size: int | None = None, name: str | None = None) -> Any:
        """Knowledge bases a live session can use (``knowledge_id``)."""
        return self._run(v4.knowledge_bases(page, size, name))

    # --- live avatar sessions ------------------------------------------------------------------

    def create_session(self, avatar_id: str, duration: int) -> Any:
        return self._run(endpoints.session_create(avatar_id, duration))

    def session_detail(self, session_id: str) -> Any:
        return self._run(endpoints.session_detail(session_id))

    def list_sessions(self, page: int | None = None, size: int | None = None, status: int | None = None) -> Any:
        return self._run(endpoints.session_list(page, size, status))

    def close_session(self, session_id: str) -> Any:
        return self._run(endpoints.session_close(session_id))
