"""JobStatus reads each kind's failure fields."""

from __future__ import annotations

from akool_flows.api import JobStatus


def test_image_error_reasons_entries_use_the_payload_field_names():
    st = JobStatus.from_payload("image_generate", {"_id": "a", "image_status": 4, "error_reasons": [
        {"error_code": 1108, "error_msg": "image generate error"}]})
    assert (st.state, st.error_code, st.error_message) == ("failed", 1108, "image generate error")
    st = JobStatus.from_payload("image_generate", {"_id": "a", "image_status": 4,
                                                   "error_reasons": [{"code": 7, "msg": "short form"}]})
    assert (st.error_code, st.error_message) == (7, "short form")
