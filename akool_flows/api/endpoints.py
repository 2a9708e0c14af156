"""Every Akool endpoint as data: the request to send and how to read the answer.

Both clients (sync and async) execute the same `Call` objects, so the method, path, query and
body field names are written once, here and in the registry, and tested once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from akool_flows.api.errors import (
    HTTPStatusError,
    MalformedResponseError,
    NotFoundError,
    ProcessingError,
    RateLimitError,
    ServerError,
    ValidationError,
    error_from_code,
)
from akool_flows.api.jobs import Job, JobStatus
from akool_flows.api.kinds import V3, V4, JobKind, get_kind
from akool_flows.api.transport import RawResponse

GET_TOKEN_PATH = f"{V3}/getToken"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    body: Any = None
    #: "api" (AKOOL_BASE_URL) or "detect" (AKOOL_DETECT_URL, a full URL).
    host: str = "api"
    #: A create call: retried only on errors that prove nothing was created.
    creates: bool = False
    #: Envelope style: "code" (code == 1000) or "error_code" (face detect, 0 == success).
    envelope: str = "code"
    auth: bool = True
    parse: Callable[[Any], Any] = field(default=lambda data: data)


def check_envelope(call: Call, raw: RawResponse) -> Any:
    """Return `data` of a successful answer or raise the typed error it stands for."""
    endpoint = call.path if call.host == "api" else "detect"
    if raw.status_code == 429:
        raise RateLimitError("HTTP 429 Too Many Requests", endpoint=endpoint, http_status=429)
    if raw.status_code >= 500:
        raise ServerError(f"HTTP {raw.status_code}", endpoint=endpoint, http_status=raw.status_code)
    if raw.status_code != 200:
        # 4xx other than 429: the request was refused before processing.
        raise HTTPStatusError(f"HTTP {raw.status_code}", endpoint=endpoint, http_status=raw.status_code)
    try:
        payload = json.loads(raw.content)
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponseError("answer is not JSON", endpoint=endpoint, http_status=200) from None
    if not isinstance(payload, dict):
        raise MalformedResponseError("answer is not a JSON object", endpoint=endpoint, http_status=200)
    if call.envelope == "error_code":
        code = payload.get("error_code")
        if code != 0:
            msg = str(payload.get("error_msg") or "face detect failed")
            raise ProcessingError(msg, code=code if isinstance(code, int) else None, endpoint=endpoint,
                                  http_status=200)
        return payload
    code = payload.get("code")
    if code != 1000:
        if not isinstance(code, int):
            raise MalformedResponseError("answer has no business code", endpoint=endpoint, http_status=200)
        raise error_from_code(code, payload.get("msg"), endpoint)
    if call.path == GET_TOKEN_PATH:
        return payload
    return payload.get("data")


# --- jobs ------------------------------------------------------------------------------------

def _first_record(data: Any) -> dict[str, Any]:
    if isinstance(data, list):
        return data[0] if data and isinstance(data[0], dict) else {}
    return data if isinstance(data, dict) else {}


def submit(kind: str | JobKind, fields: Mapping[str, Any]) -> Call:
    k = get_kind(kind)
    body = k.build_body(fields)  # validates: nothing is sent for bad input

    def parse(data: Any) -> Job:
        record = _first_record(data)
        job_id = record.get("_id")
        if not job_id:
            raise MalformedResponseError("create answer has no _id", endpoint=k.create_path)
        task_id = record.get(k.cancel_id_field) if k.cancel_id_field and k.cancel_id_field != "_id" else None
        return Job(job_id=str(job_id), kind=k.name, task_id=task_id, raw=record)

    return Call("POST", k.create_path, body=body, creates=True, parse=parse)


def _check_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not job_id.strip():
        raise ValidationError("job_id must be a non-empty string", field="job_id")
    if "," in job_id:
        raise ValidationError("job_id must be a single id (no commas)", field="job_id")
    return job_id.strip()


def status(kind: str | JobKind, job_id: str) -> Call:
    k = get_kind(kind)
    job_id = _check_id(job_id)

    def parse(data: Any) -> JobStatus:
        if k.batch_poll:
            records = (data or {}).get("result") or []
            record = next((r for r in records if str(r.get("_id")) == job_id), None)
            if record is None:
                raise NotFoundError(f"job {job_id} not found", code=1008, endpoint=k.status_path)
            return JobStatus.from_payload(k, record, job_id)
        return JobStatus.from_payload(k, _first_record(data), job_id)

    return Call("GET", k.status_path, params={k.status_id_param: job_id}, parse=parse)


#: Ids per listbyids request: keeps the URL far below common 8 KB limits (24-char ids + comma).
BATCH_POLL_CHUNK = 100


def statuses_batch(kind: str | JobKind, ids: Iterable[str]) -> Call:
    """One `listbyids` call for up to BATCH_POLL_CHUNK ids of a batch-pollable kind."""
    k = get_kind(kind)
    if not k.batch_poll:
        raise ValidationError(f"{k.name} has no batch status endpoint", field="kind")
    id_list = [_check_id(i) for i in ids]

    def parse(data: Any) -> dict[str, JobStatus]:
        out = {}
        for record in (data or {}).get("result") or []:
            rid = str(record.get("_id", ""))
            if rid:
                out[rid] = JobStatus.from_payload(k, record, rid)
        return out

    return Call("GET", k.status_path, params={k.status_id_param: ",".join(id_list)}, parse=parse)


def cancel(kind: str | JobKind, job: Job | str) -> Call:
    k = get_kind(kind)
    if not k.cancellable:
        raise ValidationError(f"{k.name} jobs cannot be cancelled through the API", field="kind")
    if isinstance(job, Job):
        value = job.task_id if k.cancel_id_field != "_id" else job.job_id
    else:
        value = job
    if not value:
        raise ValidationError(f"cancelling {k.name} needs the create answer's {k.cancel_id_field}",
                              field=k.cancel_id_field)
    return Call("POST", k.cancel_path, body={k.cancel_body_field: value})


# --- account, catalogues and tools -----------------------------------------------------------

def _token_from(payload: dict[str, Any]) -> str:
    token = payload.get("token")
    if not isinstance(token, str) or not token.strip():
        # Without this the next call would go out unauthenticated (and exchange again, forever).
        raise MalformedResponseError("getToken answer has no token", endpoint=GET_TOKEN_PATH, http_status=200)
    return token.strip()


def get_token(client_id: str, client_secret: str) -> Call:
    return Call("POST", GET_TOKEN_PATH, body={"clientId": client_id, "clientSecret": client_secret},
                auth=False, parse=_token_from)


def _params(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


def voices(from_: int | None = None) -> Call:
    if from_ not in (None, 3, 4):
        raise ValidationError("from must be 3 (Akool voices) or 4 (your voices)", field="from")
    return Call("GET", f"{V3}/voice/list", params=_params(**{"from": from_}))


def avatars(from_: int | None = None, type_: int | None = None, page: int | None = None,
            size: int | None = None) -> Call:
    if from_ not in (None, 2, 3):
        raise ValidationError("from must be 2 (official) or 3 (yours)", field="from")
    if type_ not in (None, 1, 2):
        raise ValidationError("type must be 1 (talking) or 2 (streaming)", field="type")
    return Call("GET", f"{V3}/avatar/list", params=_params(**{"from": from_, "type": type_, "page": page,
                                                               "size": size}))


def live_avatars(page: int | None = None, size: int | None = None) -> Call:
    if size is not None and not 1 <= size <= 100:
        raise ValidationError("size must be between 1 and 100", field="size")
    return Call("GET", f"{V4}/liveAvatar/avatar/list", params=_params(page=page, size=size))


def avatar_detail(avatar_record_id: str) -> Call:
    return Call("GET", f"{V3}/avatar/detail", params={"id": _check_id(avatar_record_id)},
                parse=_first_record)


def languages() -> Call:
    return Call("GET", f"{V3}/language/list", parse=lambda data: (data or {}).get("lang_list") or [])


def credit_info() -> Call:
    return Call("GET", f"{V3}/faceswap/quota/info", parse=lambda data: float((data or {}).get("credit", 0)))


def delete_results(ids: Iterable[str]) -> Call:
    id_list = [_check_id(i) for i in ids]
    if not id_list:
        raise ValidationError("give at least one result id", field="_ids")
    return Call("POST", f"{V3}/faceswap/result/delbyids", body={"_ids": ",".join(id_list)})


def cancel_faceswap_jobs(task_ids: Iterable[str]) -> Call:
    id_list = [_check_id(i) for i in task_ids]
    if not id_list:
        raise ValidationError("give at least one job id", field="job_ids")
    return Call("POST", f"{V3}/faceswap/job/del", body={"job_ids": ",".join(id_list)})


@dataclass(frozen=True)
class FaceDetection:
    landmarks: list[Any]
    landmarks_str: list[str]
    region: list[Any]
    raw: dict[str, Any] = field(repr=False)

    @property
    def opts(self) -> str:
        """The first face's landmarks, ready to use as a face's `opts`."""
        if not self.landmarks_str:
            raise ProcessingError("no face detected", endpoint="detect")
        return self.landmarks_str[0]

    def face(self, path: str, index: int = 0) -> dict[str, str]:
        """A `{path, opts}` entry for sourceImage/targetImage."""
        return {"path": path, "opts": self.landmarks_str[index]}


def face_detect(*, image_url: str | None = None, img: str | None = None, single_face: bool = False) -> Call:
    if bool(image_url) == bool(img):
        raise ValidationError("give exactly one of image_url or img (base64)", field="image_url")
    body = _params(single_face=bool(single_face), image_url=image_url, img=img)

    def parse(payload: dict[str, Any]) -> FaceDetection:
        lstr = payload.get("landmarks_str") or []
        if not lstr and payload.get("landmarks"):
            # Build it as the docs describe: the first 4 points joined with ":".
            lstr = [":".join(f"{p[0]},{p[1]}" for p in face[:4]) for face in payload["landmarks"]]
        return FaceDetection(payload.get("landmarks") or [], list(lstr), payload.get("region") or [], payload)

    return Call("POST", "detect", body=body, host="detect", envelope="error_code", parse=parse)


def session_create(avatar_id: str, duration: int) -> Call:
    return submit("live_session", {"avatar_id": avatar_id, "duration": duration})


def session_detail(session_id: str) -> Call:
    return Call("GET", f"{V4}/liveAvatar/session/detail", params={"id": _check_id(session_id)})


def session_list(page: int | None = None, size: int | None = None, status: int | None = None) -> Call:
    if status not in (None, 1, 2, 3, 4):
        raise ValidationError("status must be 1, 2, 3 or 4", field="status")
    return Call("GET", f"{V4}/liveAvatar/session/list", params=_params(page=page, size=size, status=status))


def session_close(session_id: str) -> Call:
    return Call("POST", f"{V4}/liveAvatar/session/close", body={"id": _check_id(session_id)})

