"""qa serve through Starlette's TestClient: the JSON equals `qa ask --json`'s, every bad request is a one-line
4xx JSON error, new generations are picked up, the page is self-contained, and `qa ask` stays free of the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

import qa
import qa.search
import qa.store.folder
from qa.cli import app as cli
from qa.serve import MAX_BODY_BYTES, MAX_K, create_app

from .conftest import ROOT, SEEDS

pytestmark = pytest.mark.slow  # the seeds index is built with the real embedding model

runner = CliRunner()
Q = "tons seized in Safe Mekong"
TOP = ("000_8a6680b996ccc773", 7)


@pytest.fixture
def client(copy_index):
    with TestClient(create_app(copy_index)) as c:
        yield c


def _cli_json(index_dir, *args: str) -> list[dict]:
    r = runner.invoke(cli, ["ask", *args, "--json", "--index-dir", str(index_dir)])
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()]


def _clean_error(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    assert "\n" not in body["error"] and "Traceback" not in r.text
    return body["error"]


# -- one schema, one code path -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, args",
    [
        ({}, []),
        ({"k": 3, "mode": "bm25"}, ["-k", "3", "--mode", "bm25"]),
        ({"mode": "dense", "context": 1}, ["--mode", "dense", "--context", "1"]),
        ({"fusion": "rrf", "rerank": "none", "k": 2}, ["--fusion", "rrf", "--rerank", "none", "-k", "2"]),
        ({"alpha": 0.8, "fusion": "convex", "exact": "true"}, ["--alpha", "0.8", "--fusion", "convex", "--exact"]),
    ],
)
def test_get_ask_is_exactly_qa_ask_json(client, copy_index, params, args):
    r = client.get("/ask", params={"q": Q, **params})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    (want,) = _cli_json(copy_index, Q, *args)
    assert r.json() == want  # same keys (fields added to Answer.to_dict pass through), same values
    assert (r.json()["hits"][0]["article"], r.json()["hits"][0]["sentence"]) == TOP or params.get("mode") == "dense"


def test_post_ask_one_and_batch_equal_qa_ask_json(client, copy_index, tmp_path):
    (want,) = _cli_json(copy_index, Q, "-k", "2")
    r = client.post("/ask", json={"question": Q, "k": 2})
    assert r.status_code == 200 and r.json() == want
    assert client.post("/ask", json={"question": Q, "k": 2, "id": "a1"}).json() == {**want, "id": "a1"}
    # a batch answers each question as `qa ask QUESTION --json` does, with ids as `qa ask --questions` gives them
    # (that command embeds its questions as one padded batch, which can move scores in the 7th digit)
    q2 = "how many suspects were arrested"
    want_batch = [{**_cli_json(copy_index, q, "-k", "2")[0], "id": str(n)} for n, q in enumerate([Q, q2], 1)]
    r = client.post("/ask", json={"questions": [Q, q2], "k": 2})
    assert r.status_code == 200 and r.json() == {"answers": want_batch}
    jl = tmp_path / "q.jsonl"
    jl.write_text(json.dumps({"id": "q7", "question": Q}) + "\n", encoding="utf-8")
    (want_q7,) = _cli_json(copy_index, "--questions", str(jl), "--mode", "bm25")
    r = client.post("/ask", json={"questions": [{"id": "q7", "question": Q}, {"question": q2}], "mode": "bm25"})
    assert r.json()["answers"][0] == want_q7 and r.json()["answers"][1]["id"] == "2"


def test_info_is_qa_info_json(client, copy_index):
    r = runner.invoke(cli, ["info", "--json", "--index-dir", str(copy_index)])
    assert client.get("/info").json() == json.loads(r.stdout)


def test_healthz_and_openapi(client, copy_index):
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["sentences"] == 47 and h["generation"].startswith("gen-")
    doc = client.get("/openapi.json").json()
    ops = {(p, m) for p, item in doc["paths"].items() for m in item}
    assert ops == {("/ask", "get"), ("/ask", "post"), ("/ask/highlights", "get"), ("/info", "get"),
                   ("/healthz", "get"), ("/source", "get")}  # read-only: the one POST answers questions
    get_ask = doc["paths"]["/ask"]["get"]
    assert set(get_ask["responses"]) == {"200", "400"}  # validation errors are 400 {"error"}, as served
    params = {p["name"]: p["schema"] for p in get_ask["parameters"]}
    assert params["q"]["maxLength"] == qa.search.MAX_QUESTION_CHARS and params["k"]["maximum"] == MAX_K
    assert set(doc["paths"]["/ask"]["post"]["responses"]) == {"200", "400", "413", "415"}


# -- bad requests ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, needle",
    [
        ({"q": ""}, "the question is empty"),
        ({"q": "   "}, "the question is empty"),
        ({"q": "the of and"}, "no searchable words"),
        ({"q": "?!"}, "no searchable words"),
        ({"q": "x" * 10_001}, "limit is 10,000"),
        ({}, "q: Field required"),
        ({"q": Q, "k": 0}, "k: must be at least 1, got 0"),
        ({"q": Q, "k": MAX_K + 1}, f"k: must be at most {MAX_K}, got {MAX_K + 1}"),
        ({"q": Q, "k": "many"}, "k:"),
        ({"q": Q, "k": "1.5"}, "k:"),
        ({"q": Q, "mode": "semantic"}, "mode:"),
        ({"q": Q, "fusion": "max"}, "fusion:"),
        ({"q": Q, "alpha": "1.5"}, "alpha: must be at most 1.0, got 1.5"),
        ({"q": Q, "alpha": "-0.1"}, "alpha: must be at least 0.0, got -0.1"),
        ({"q": Q, "alpha": "nan"}, "alpha:"),
        ({"q": Q, "context": -1}, "context:"),
        ({"q": Q, "rerank": "/etc"}, "rerank:"),  # no folders or model names over HTTP: only the shipped model
        ({"q": Q, "exact": "perhaps"}, "exact:"),
    ],
)
def test_bad_get_ask_is_400(client, params, needle):
    for path in ("/ask", "/ask/highlights"):
        assert needle in _clean_error(client.get(path, params=params), 400)


def test_lone_surrogate_question_is_400(client):
    r = client.post("/ask", content=b'{"question": "tons \\ud800 seized"}', headers={"content-type": "application/json"})
    assert "not valid text" in _clean_error(r, 400)


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"{", "invalid JSON"),
        (b"", "empty body"),
        (b"[]", "body:"),
        (b"null", "body:"),
        (b'{"k": 3}', 'send {"question"'),
        (b'{"question": "a", "questions": ["b"]}', "not both"),
        (b'{"question": 5}', "question:"),
        (b'{"question": ""}', "the question is empty"),
        (b'{"question": "tons", "k": 0}', "k: must be at least 1, got 0"),
        (b'{"question": "tons", "mode": "x"}', "mode:"),
        (b'{"question": "tons", "typo": 1}', "typo: Extra inputs"),
        (b'{"questions": []}', "questions:"),
        (b'{"questions": [{"q": "x"}]}', "questions.0.question"),
        (b'{"questions": ["tons seized", "the"]}', "questions[1] (id 2)"),
        (b'{"questions": ["tons"], "alpha": 7}', "alpha:"),
    ],
)
def test_bad_post_ask_is_400(client, body, needle):
    r = client.post("/ask", content=body, headers={"content-type": "application/json"})
    assert needle in _clean_error(r, 400)


def test_batch_limit_body_size_and_content_type(client):
    assert "questions:" in _clean_error(client.post("/ask", json={"questions": ["tons"] * 101}), 400)
    big = {"question": "x" * (MAX_BODY_BYTES + 10)}
    assert "over 1,048,576 bytes" in _clean_error(client.post("/ask", json=big), 413)

    def chunks():  # no Content-Length: the limit holds for a streamed body too
        for _ in range(20):
            yield b" " * 65_536

    r = client.post("/ask", content=chunks(), headers={"content-type": "application/json"})
    assert "over" in _clean_error(r, 413)
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""):
        r = client.post("/ask", content=json.dumps({"question": Q}).encode(), headers={"content-type": ctype})
        assert "Content-Type: application/json" in _clean_error(r, 415)
    ok = client.post("/ask", content=json.dumps({"question": Q}).encode(),
                     headers={"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


def test_unknown_paths_and_methods(client):
    assert "not found" in _clean_error(client.get("/nope"), 404)
    assert "not found" in _clean_error(client.get("/static/../../qa/index.py"), 404)
    for method in ("put", "delete", "patch"):
        _clean_error(client.request(method.upper(), "/ask"), 405)
    _clean_error(client.post("/info", json={}), 405)


# -- the page --------------------------------------------------------------------------------------------------------
def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert '<input id="q"' in page and "/static/app.js" in page and "/static/style.css" in page
    for asset in ("/", "/static/app.js", "/static/style.css"):
        text = client.get(asset).text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text  # no CDN, works offline


def test_highlights_are_the_cli_highlights(client, copy_index):
    d = client.get("/ask/highlights", params={"q": Q, "k": 2, "context": 1}).json()
    (want,) = _cli_json(copy_index, Q, "-k", "2", "--context", "1")
    assert d["answer"] == want
    hit, spans = d["answer"]["hits"][0], d["highlights"][0]
    marked = [hit["text"][s:e] for s, e in spans["text"]]
    assert marked == ["Mekong", "Safe", "Mekong", "tons", "tons", "seized"]  # qa ask's **bold** words
    assert len(spans["before"]) == len(hit["context"]["before"]) and len(spans["after"]) == len(hit["context"]["after"])


def test_source_page_marks_the_cited_characters(client):
    hit = client.get("/ask", params={"q": Q, "k": 1}).json()["hits"][0]
    r = client.get("/source", params={"article": hit["article"], "start": hit["start"], "end": hit["end"]})
    assert r.status_code == 200 and f'<mark id="cited">{hit["text"]}</mark>' in r.text
    raw = (SEEDS / f"{hit['article']}.txt").read_text(encoding="utf-8")
    assert raw[hit["start"] : hit["end"]] == hit["text"]
    assert "no article" in _clean_error(client.get("/source", params={"article": "../../etc/passwd"}), 404)
    assert "start and end" in _clean_error(
        client.get("/source", params={"article": hit["article"], "start": 5, "end": 10**6}), 400)
    assert "start and end" in _clean_error(
        client.get("/source", params={"article": hit["article"], "start": 9, "end": 3}), 400)


def test_source_page_escapes_html(tmp_path, encoder):
    doc = tmp_path / "corpus" / "evil.txt"
    doc.parent.mkdir()
    doc.write_text('Officials said <script>alert("x")</script> the seizure totalled 5 tons.\n', encoding="utf-8")
    idx = qa.Index.build([doc.parent], tmp_path / "idx", encoder=encoder)
    with TestClient(create_app(tmp_path / "idx", index=idx)) as c:
        r = c.get("/source", params={"article": "evil", "start": 0, "end": 5})
        assert "<script>" not in r.text and "&lt;script&gt;" in r.text


# -- new generations -------------------------------------------------------------------------------------------------
def test_new_generation_is_picked_up_on_the_next_request(copy_index, tmp_path, encoder):
    with TestClient(create_app(copy_index)) as c:
        old = c.get("/ask", params={"q": Q, "k": 3, "mode": "bm25"}).json()
        gen_old = c.get("/healthz").json()["generation"]
        extra = tmp_path / "more"
        extra.mkdir()
        (extra / "zz_new.txt").write_text("Police seized 44 tons of drugs in the Safe Mekong operation in Laos.\n",
                                          encoding="utf-8")
        qa.Index.build([SEEDS, extra], copy_index, encoder=encoder)
        h = c.get("/healthz").json()
        assert h["generation"] != gen_old and h["sentences"] == 48
        new = c.get("/ask", params={"q": Q, "k": 3, "mode": "bm25"}).json()
        assert new != old and "zz_new" in {x["article"] for x in new["hits"]}
        assert new == _cli_json(copy_index, Q, "-k", "3", "--mode", "bm25")[0]
        assert c.app.state.live.reloads == 1


def test_broken_new_generation_keeps_the_old_one(client, copy_index):
    before = client.get("/ask", params={"q": Q, "k": 1}).json()
    (copy_index / "CURRENT").write_text("gen-does-not-exist\n", encoding="utf-8")
    r = client.get("/ask", params={"q": Q, "k": 1})
    assert r.status_code == 200 and r.json() == before
    assert client.get("/healthz").json()["status"] == "ok"


# -- the CLI side ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, needle", [(["--workers", "0"], "--workers"), (["--port", "0"], "--port"),
                                          (["--cache", "-1"], "--cache")])
def test_serve_bad_options(copy_index, args, needle):
    r = runner.invoke(cli, ["serve", "--index-dir", str(copy_index), *args])
    assert r.exit_code == 2 and needle in r.output


def test_serve_without_an_index_is_exit_4(tmp_path):
    r = runner.invoke(cli, ["serve", "--index-dir", str(tmp_path / "none")])
    assert r.exit_code == 4 and "no index" in r.output


def test_qa_ask_imports_neither_the_server_nor_torch(onnx_index):
    code = (
        "import json, sys\n"
        "from qa.cli import main\n"
        f"sys.argv = ['qa', 'ask', {Q!r}, '--json', '--index-dir', {str(onnx_index)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = ('fastapi', 'starlette', 'uvicorn', 'torch', 'sentence_transformers')\n"  # (typer itself imports pydantic)
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("QA_QUERY_ENCODER", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert json.loads(lines[0])["hits"][0]["sentence"] == 7
    assert json.loads(lines[-1]) == []
