"""Every Akool endpoint as data: the request to send and how to read the answer.

Both clients (sync and async) execute the same `Call` objects, so the method, path, query and
body field names are written once, here and in the registry, and tested once. The v4 endpoints
beside the job kinds (image to video's extras, v4 voice lists, knowledge bases) are in `v4`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from akool_flows.api.errors import (
    AkoolError,
    AuthenticationError,
    HTTPStatusError,
    MalformedResponseError,
    NotFoundError,
    ProcessingError,
    RateLimitError,
    ServerError,
    ValidationError,
    error_from_code,
)
from akool_flows.api.jobs import Job, JobStatus, Refusal
from akool_flows.api.kinds import V3, V4, JobKind, get_kind
from akool_flows.api.retry import parse_retry_after
from akool_flows.api.transport import RawResponse

GET_TOKEN_PATH = f"{V3}/getToken"
# The registry entries whose endpoints also serve calls that are not one job's: face swap's cancel
# and delete take the ids of any face swap / re-age kind; avatar and session details are the status
# endpoints of the kinds that create them.
_FACESWAP, _AVATAR, _SESSION = "faceswap_image", "avatar_upload", "live_session"


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
    #: `parse` gets the whole answer, not only its `data` (getToken's `token`, `all_results`).
    whole: bool = False
    auth: bool = True
    parse: Callable[[Any], Any] = field(default=lambda data: data)


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def check_envelope(call: Call, raw: RawResponse) -> Any:
    """Return `data` of a successful answer or raise the typed error it stands for."""
    endpoint = call.path if call.host == "api" else "detect"
    status = raw.status_code
    if not 200 <= status < 300:
        raise _http_status_error(call, raw, endpoint)
    # Any 2xx is an answer to read: a create answered 201/202 has created the job.
    try:
        payload = json.loads(raw.content)
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponseError("answer is not JSON", endpoint=endpoint, http_status=status) from None
    if not isinstance(payload, dict):
        raise MalformedResponseError("answer is not a JSON object", endpoint=endpoint, http_status=status)
    if call.envelope == "error_code":
        code = payload.get("error_code")
        if code != 0:
            msg = str(payload.get("error_msg") or "face detect failed")
            raise ProcessingError(msg, code=code if isinstance(code, int) else None, endpoint=endpoint,
                                  http_status=status)
        return payload
    code = payload.get("code")
    if code != 1000:
        if not isinstance(code, int):
            raise MalformedResponseError("answer has no business code", endpoint=endpoint, http_status=status)
        raise error_from_code(code, payload.get("msg"), endpoint, http_status=status)
    return payload if call.whole else payload.get("data")


def _http_status_error(call: Call, raw: RawResponse, endpoint: str) -> AkoolError:
    """The error for a non-2xx answer, keeping Akool's `{"code", "msg"}` when the body has it."""
    status = raw.status_code
    payload = _json_object(raw.content) or {}
    code_field, msg_field, success = (("error_code", "error_msg", 0) if call.envelope == "error_code"
                                      else ("code", "msg", 1000))
    code = payload.get(code_field)
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    msg = str(payload.get(msg_field) or "").strip()
    retry_after = parse_retry_after(raw.headers.get("Retry-After")) if status in (429, 503) else None
    kw: dict[str, Any] = {"code": code, "endpoint": endpoint, "http_status": status, "retry_after": retry_after}
    if status == 429:  # refused before processing, whatever the body says
        return RateLimitError(msg or "HTTP 429 Too Many Requests", **kw)
    if status >= 500:  # may have been processed before failing, whatever the body says
        return ServerError(msg or f"HTTP {status}", **kw)
    if 400 <= status < 500:
        if code is not None and code != success and call.envelope == "code":
            return error_from_code(code, msg, endpoint, http_status=status, retry_after=retry_after)
        if status == 401:  # an exchanged token is exchanged again, as for code 1101
            return AuthenticationError(msg or "HTTP 401 Unauthorized", **kw)
        return HTTPStatusError(msg or f"HTTP {status}", **kw)
    # 1xx/3xx (redirects are not followed): nothing we can read, and a 303 after a POST says the
    # request was processed.
    return MalformedResponseError(f"HTTP {status}: unexpected status", **kw)


# --- jobs ------------------------------------------------------------------------------------

def _first_record(data: Any) -> dict[str, Any]:
    if isinstance(data, list):
        return data[0] if data and isinstance(data[0], dict) else {}
    return data if isinstance(data, dict) else {}


def _job_from(k: JobKind, record: dict[str, Any], endpoint: str) -> Job:
    job_id = record.get("_id")
    if not job_id:
        raise MalformedResponseError("create answer has no _id", endpoint=endpoint)
    task_id = record.get(k.cancel_id_field) if k.cancel_id_field and k.cancel_id_field != "_id" else None
    language = record.get(k.split_field) if k.split_field == "language" else None
    return Job(job_id=str(job_id), kind=k.name, task_id=task_id, raw=record,
               language=str(language) if language else None)


def _several(k: JobKind, results: list[Any], asked: list[str | None], endpoint: str) -> Job:
    """The `Job` of a create answered with ``all_results`` (one envelope per part, in the order
    asked): every job it made, and the parts Akool refused."""
    jobs: list[Job] = []
    refused: list[Refusal] = []
    for i, entry in enumerate(results):
        entry = entry if isinstance(entry, dict) else {}
        part = asked[i] if i < len(asked) else None
        if entry.get("code") == 1000:
            job = _job_from(k, _first_record(entry.get("data")), endpoint)
            jobs.append(job if job.language or part is None else replace(job, language=part))
        else:
            code = entry.get("code")
            refused.append(Refusal(code if isinstance(code, int) and not isinstance(code, bool) else None,
                                   str(entry.get("msg") or "refused"), language=part))
    return several_jobs(jobs, refused, endpoint)


def several_jobs(jobs: list[Job], refused: list[Refusal], endpoint: str) -> Job:
    """The `Job` of a create that answered several: the first job, listing all of them."""
    if not jobs:
        # Akool refused every part: nothing was created, so the first refusal is the answer.
        first = refused[0] if refused else Refusal(None, "the answer lists no job")
        if first.code is None:
            raise MalformedResponseError(f"create answer has no job: {first.message}", endpoint=endpoint)
        raise error_from_code(first.code, first.message, endpoint)
    return replace(jobs[0], parts=tuple(jobs), refused=tuple(refused))


def submit(kind: str | JobKind, fields: Mapping[str, Any], *, strict: bool = False) -> Call:
    """Create a job; the answer's `Job` lists every job the call made (`Job.jobs`)."""
    k = get_kind(kind)
    body = k.build_body(fields, strict=strict)  # validates: nothing is sent for bad input
    asked: list[str | None] = ([c.strip() for c in str(body[k.split_field]).split(",")] if k.splits(body)
                               else [])

    def parse(payload: dict[str, Any]) -> Job:
        results = payload.get("all_results")
        if isinstance(results, list) and results:
            return _several(k, results, asked, k.create_path)
        return _job_from(k, _first_record(payload.get("data")), k.create_path)

    return Call("POST", k.create_path, body=body, creates=True, whole=True, parse=parse)


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

    return _status_call(k, job_id, parse)


def _status_call(k: JobKind, ids: str, parse: Callable[[Any], Any]) -> Call:
    if k.status_method == "POST":  # image to video's resultsByIds takes {"_ids": "a,b"}
        return Call("POST", k.status_path, body={k.status_id_param: ids}, parse=parse)
    return Call("GET", k.status_path, params={k.status_id_param: ids}, parse=parse)


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

    return _status_call(k, ",".join(id_list), parse)


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
                auth=False, whole=True, parse=_token_from)


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
    """An uploaded avatar's record (the raw payload of the avatar upload's status endpoint)."""
    k = get_kind(_AVATAR)
    return Call("GET", k.status_path, params={k.status_id_param: _check_id(avatar_record_id)},
                parse=_first_record)


def languages() -> Call:
    return Call("GET", f"{V3}/language/list", parse=lambda data: (data or {}).get("lang_list") or [])


def credit_info() -> Call:
    return Call("GET", f"{V3}/faceswap/quota/info", parse=lambda data: float((data or {}).get("credit", 0)))


def delete_results(ids: Iterable[str]) -> Call:
    id_list = [_check_id(i) for i in ids]
    if not id_list:
        raise ValidationError("give at least one result id", field="_ids")
    path = get_kind(_FACESWAP).delete_path
    assert path is not None
    return Call("POST", path, body={"_ids": ",".join(id_list)})


def cancel_faceswap_jobs(task_ids: Iterable[str]) -> Call:
    k = get_kind(_FACESWAP)
    assert k.cancel_path is not None and k.cancel_body_field is not None
    id_list = [_check_id(i) for i in task_ids]
    if not id_list:
        raise ValidationError("give at least one job id", field=k.cancel_body_field)
    return Call("POST", k.cancel_path, body={k.cancel_body_field: ",".join(id_list)})


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
    return submit(_SESSION, {"avatar_id": avatar_id, "duration": duration})


def session_detail(session_id: str) -> Call:
    """A live session's raw detail (its status endpoint, unnormalised: Agora credentials and all)."""
    k = get_kind(_SESSION)
    return Call("GET", k.status_path, params={k.status_id_param: _check_id(session_id)})


def session_list(page: int | None = None, size: int | None = None, status: int | None = None) -> Call:
    if status not in (None, 1, 2, 3, 4):
        raise ValidationError("status must be 1, 2, 3 or 4", field="status")
    return Call("GET", f"{V4}/liveAvatar/session/list", params=_params(page=page, size=size, status=status))


def session_close(session_id: str) -> Call:
    k = get_kind(_SESSION)
    assert k.cancel_path is not None and k.cancel_body_field is not None
    return Call("POST", k.cancel_path, body={k.cancel_body_field: _check_id(session_id)})


