"""Interop with an independent implementation: the docs' Node crypto-js sample.

Bodies made by the docs' `generateAesEncrypt` + `generateMsgSignature` must verify and
decrypt here, and bodies made here must verify and decrypt with the docs' Node code.
Skipped (with the reason) when node or npm is missing or crypto-js cannot be installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from akool_flows.webhook import build_webhook_body, verify_and_decrypt

from .conftest import CLIENT_ID, CLIENT_SECRET, SHORT_CLIENT_ID

# The docs' functions, verbatim (Webhook page, "Example: Encryption and Decryption").
DOCS_NODE = r"""
const CryptoJS = require('crypto-js')
const crypto = require('crypto');

function generateMsgSignature(clientId, timestamp, nonce, msgEncrypt){
    const sortedStr = [clientId, timestamp, nonce, msgEncrypt].sort().join('');
    const hash = crypto.createHash('sha1').update(sortedStr).digest('hex');
    return hash;
}

function generateAesDecrypt(dataEncrypt,clientId,clientSecret){
    const aesKey = clientSecret
    const key = CryptoJS.enc.Utf8.parse(aesKey)
    const iv = CryptoJS.enc.Utf8.parse(clientId)
    const decrypted = CryptoJS.AES.decrypt(dataEncrypt, key, {
        iv: iv,
        mode: CryptoJS.mode.CBC,
        padding: CryptoJS.pad.Pkcs7
    })
    return decrypted.toString(CryptoJS.enc.Utf8)
}

function generateAesEncrypt(data,clientId,clientSecret){
    const aesKey = clientSecret
    const key = CryptoJS.enc.Utf8.parse(aesKey)
    const iv = CryptoJS.enc.Utf8.parse(clientId)
    const srcs = CryptoJS.enc.Utf8.parse(data)
    const encrypted = CryptoJS.AES.encrypt(srcs, key, {
            iv: iv,
            mode: CryptoJS.mode.CBC,
            padding: CryptoJS.pad.Pkcs7
    })
    return encrypted.toString()
}

// Driver: one JSON request on stdin, one JSON answer on stdout.
let input = '';
process.stdin.on('data', c => input += c);
process.stdin.on('end', () => {
  const req = JSON.parse(input);
  const out = [];
  for (const c of req.encrypt) {
    const dataEncrypt = generateAesEncrypt(c.data, c.clientId, c.clientSecret);
    out.push({signature: generateMsgSignature(c.clientId, c.timestamp, c.nonce, dataEncrypt),
              dataEncrypt, timestamp: c.timestamp, nonce: c.nonce});
  }
  const verified = [];
  for (const c of req.verify) {
    const b = c.body;
    const ok = b.signature === generateMsgSignature(c.clientId, b.timestamp, b.nonce, b.dataEncrypt);
    verified.push({ok, data: ok ? generateAesDecrypt(b.dataEncrypt, c.clientId, c.clientSecret) : null});
  }
  process.stdout.write(JSON.stringify({bodies: out, verified}));
});
"""


@pytest.fixture(scope="module")
def node_runner(tmp_path_factory):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("Node interop needs `node` and `npm` on PATH (not found)")
    work = tmp_path_factory.mktemp("node-interop")
    try:
        subprocess.run(
            [npm, "install", "crypto-js@4", "--no-audit", "--no-fund", "--no-package-lock", "--silent"],
            cwd=work, check=True, capture_output=True, timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"`npm install crypto-js` failed (registry unreachable?): {exc}")
    script = work / "docs_sample.js"
    script.write_text(DOCS_NODE)

    def run(encrypt_cases=(), verify_cases=()):
        proc = subprocess.run(
            [node, str(script)], cwd=work, input=json.dumps({"encrypt": list(encrypt_cases), "verify": list(verify_cases)}),
            capture_output=True, text=True, timeout=60, check=True,
        )
        return json.loads(proc.stdout)

    return run


CLIENT_IDS = [SHORT_CLIENT_ID, "exactly16bytes!!", CLIENT_ID, "a-much-longer-client-id-than-sixteen-bytes"]
PAYLOAD = {"_id": "65d3206b83ccf5ab7d46cdc6", "status": 3, "type": "talking photo", "url": "https://r/x.mp4", "note": "é✓"}


@pytest.mark.parametrize("nonce", [1529, "1529", "n0nce-str"], ids=["numeric-nonce", "string-nonce", "text-nonce"])
@pytest.mark.parametrize("timestamp", [1710757981609, "1710757981609"], ids=["numeric-ts", "string-ts"])
def test_node_made_bodies_verify_in_python(node_runner, nonce, timestamp):
    cases = [
        {"data": json.dumps(PAYLOAD), "clientId": cid, "clientSecret": CLIENT_SECRET, "timestamp": timestamp, "nonce": nonce}
        for cid in CLIENT_IDS
    ]
    bodies = node_runner(encrypt_cases=cases)["bodies"]
    for cid, body in zip(CLIENT_IDS, bodies):
        # Through the wire format, exactly as a receiver sees it.
        event = verify_and_decrypt(json.dumps(body).encode(), cid, CLIENT_SECRET)
        assert event.raw == PAYLOAD, cid
        assert event.nonce == str(nonce) and event.timestamp == int(timestamp)


def test_crypto_js_pads_a_short_client_id_with_nul(node_runner):
    body = node_runner(encrypt_cases=[{"data": json.dumps(PAYLOAD), "clientId": SHORT_CLIENT_ID, "clientSecret": CLIENT_SECRET, "timestamp": 1, "nonce": 1}])["bodies"][0]
    assert verify_and_decrypt(body, SHORT_CLIENT_ID, CLIENT_SECRET, iv_pad=b"\0").raw == PAYLOAD


@pytest.mark.parametrize("secret", ["k" * 16, CLIENT_SECRET, "k" * 32], ids=["aes128", "aes192", "aes256"])
def test_python_made_bodies_verify_in_node(node_runner, secret):
    cases = []
    for cid in CLIENT_IDS:
        body = build_webhook_body(PAYLOAD, cid, secret, nonce="1529")
        cases.append({"body": json.loads(json.dumps(body)), "clientId": cid, "clientSecret": secret})
    verified = node_runner(verify_cases=cases)["verified"]
    for cid, result in zip(CLIENT_IDS, verified):
        assert result["ok"], f"signature rejected by the docs' Node code for clientId {cid!r}"
        assert json.loads(result["data"]) == PAYLOAD
