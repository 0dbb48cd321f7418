"""The ``qa`` command line: a thin layer over :mod:`qa` (index, ask, info, eval).

Every :class:`~qa.errors.QAError` becomes one ``error: ...`` line on stderr and a non-zero exit, never a traceback
(set ``QA_DEBUG=1`` to see one for unexpected errors).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from .cli_output import _article_lines, _print_human, _read_questions, _summary
from .errors import QAError, QueryError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Cited question answering over news articles (BM25 + dense hybrid sentence retrieval).",
)

SEEDS_DIR = "seeds"
IndexDirOpt = typer.Option(
    None, "--index-dir", envvar="QA_INDEX_DIR", help="Index folder [default: index/]", show_default=False
)
MilvusOpt = typer.Option(
    None, "--milvus", envvar="QA_MILVUS_URI", show_default=False,
    help="Keep the index in Milvus: a .db file (Milvus Lite) or http://host:19530 (credentials from MILVUS_TOKEN or "
         "MILVUS_USER/MILVUS_PASSWORD) [default: the local --index-dir]",
)
CollectionOpt = typer.Option(
    None, "--collection", envvar="QA_MILVUS_COLLECTION", show_default=False, help="Milvus collection [default: qa]"
)
ModelOpt = typer.Option(
    None, "--model", help="sentence-transformers model name or folder [default: all-MiniLM-L6-v2, offline]"
)


def _err(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn library errors into one readable line and an exit code."""
    try:
        yield
    except QAError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        _err("interrupted")
        raise typer.Exit(130) from None
    except BrokenPipeError:  # e.g. `qa ask ... | head -1`: the reader left; not an error worth a message
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so that the interpreter's final flush is quiet
        raise typer.Exit(141) from None
    except typer.Exit:
        raise
    except Exception as e:  # a bug: still one line, unless debugging
        if os.environ.get("QA_DEBUG"):
            raise
        _err(f"unexpected {type(e).__name__}: {e} (set QA_DEBUG=1 for a traceback)")
        raise typer.Exit(70) from None


class _Progress:
    """A progress bar on stderr for long builds (only on a terminal); the embedding stage shows sentences/s."""

    LABELS = {"scan": "scanning", "read": "reading", "split": "splitting", "bm25": "BM25", "embed": "embedding",
              "write": "writing"}
    UNITS = {"embed": "sentences"}

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                                       TimeRemainingColumn)
            from rich.text import Text

            class Rate(ProgressColumn):  # rich's speed estimate (recent samples), for the stages given a unit
                def render(self, task) -> Text:
                    unit = task.fields.get("unit")
                    return Text(f"{task.speed:,.0f} {unit}/s" if unit and task.speed else "", style="progress.data.speed")

            self.bar = Progress(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), Rate(),
                                TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, stage: str, advance: int, total: int) -> None:
        if self.bar is None:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(self.LABELS.get(stage, stage), total=total,
                                                  unit=self.UNITS.get(stage))
        self.bar.update(self.tasks[stage], advance=advance, total=total)


def _location(index_dir: Optional[Path], milvus: Optional[str], collection: Optional[str]) -> tuple[str, dict]:
    """Where the index lives and that store's options: ``--milvus URI`` (or ``QA_MILVUS_URI``), else ``--index-dir``
    (any location a registered store claims: a folder, a Milvus ``.db`` file or ``http://host:19530``, ...), else
    the default folder ``index/``."""
    from .store.folder import default_index_dir

    if collection and not milvus:
        raise QueryError("--collection needs --milvus URI (or QA_MILVUS_URI)")
    location = milvus or str(index_dir if index_dir is not None else default_index_dir())
    options: dict = {"collection": collection} if collection else {}
    if milvus:
        options["kind"] = "milvus"  # --milvus names the store, whatever the location looks like
    return location, options


def _is_folder(location: str, options: dict) -> bool:
    from .store.base import kind_of

    return kind_of(location, options.get("kind")).name == "folder"


def _build(
    paths: list[str], location: str, options: dict, model: Optional[str], quiet: bool = False, ann: bool = False,
    title_context: Optional[bool] = None, encoder=None, backend: Optional[str] = None, device: str = "cpu",
):
    from .embed import DEFAULT_BACKEND
    from .index import Index
    from .store.base import store_writer

    backend = backend or DEFAULT_BACKEND
    with _Progress(enabled=not quiet and sys.stderr.isatty()) as bar:
        extra = {} if title_context is None else {"title_context": title_context}
        return Index.build(paths, model=model, progress=bar, ann=ann, encoder=encoder, backend=backend, device=device,
                           store=store_writer(location, progress=bar, **options), **extra)


def _open_index(index_dir: Optional[Path], model: Optional[str], milvus: Optional[str] = None,
                collection: Optional[str] = None, verify: Optional[bool] = None):
    """Open the index through the store registry; with no --index-dir/QA_INDEX_DIR/--milvus and no index yet,
    build the default one from seeds/."""
    from .index import Index
    from .store.base import open_store
    from .store.folder import DEFAULT_INDEX_DIR, index_exists

    location, options = _location(index_dir, milvus, collection)
    if index_dir is None and milvus is None and not index_exists(DEFAULT_INDEX_DIR) and Path(SEEDS_DIR).is_dir():
        typer.echo(f"no index at {DEFAULT_INDEX_DIR}/ yet: building it from {SEEDS_DIR}/ first (once)", err=True)
        idx = _build([SEEDS_DIR], DEFAULT_INDEX_DIR, {}, model)
        typer.echo(_summary(idx), err=True)
        return idx
    return Index(open_store(location, model=model, verify=verify, **options))


@app.command()
def index(
    paths: List[str] = typer.Argument(None, help="Files or folders (.txt, .md, .jsonl) [default: seeds/]"),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    ann: bool = typer.Option(False, "--ann", help="Also build an approximate dense index (faiss IVF; pip install 'qa[ann]')."),
    title_context: Optional[bool] = typer.Option(
        None, "--title-context/--no-title-context",
        help="Index each sentence with its article's title (BM25 and embedding) [default: the index default]",
    ),
    milvus: Optional[str] = MilvusOpt,
    collection: Optional[str] = CollectionOpt,
    ray: bool = typer.Option(False, "--ray", help="Embed with Ray Data actors on a local Ray cluster started for this "
                                                 "build (pip install 'qa[ray]')."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", metavar="ADDRESS",
        help="Embed on an existing Ray cluster instead: HOST:PORT, ray://HOST:10001 or auto (implies --ray).",
    ),
    ray_actors: Optional[int] = typer.Option(
        None, "--ray-actors", min=1, help="Ray embedding actors [default: one per CPU of the cluster]"
    ),
    backend: str = typer.Option(
        "auto", "--backend",  # qa.embed.DEFAULT_BACKEND (tests/test_onnx_embed.py checks they agree)
        help="Embed documents with torch (sentence-transformers), onnx (int8 onnxruntime, CPU, faster: "
             "benchmarks/EMBED-ONNX.md) "
             "or auto (onnx on a CPU where onnxruntime is installed).",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, or cuda (a GPU, through sentence-transformers)."),
) -> None:
    """Build or update the index. Only articles whose content changed are re-embedded."""
    with _errors(), contextlib.ExitStack() as stack:
        encoder = None
        if ray or ray_address is not None or ray_actors is not None:
            from .embed.ray import RayEncoder  # imports no ray until there is something to embed

            encoder = stack.enter_context(RayEncoder(model, ray_address, num_actors=ray_actors))
            encoder.check()
        location, options = _location(index_dir, milvus, collection)
        idx = _build(paths or [SEEDS_DIR], location, options, model, quiet, ann, title_context=title_context,
                     encoder=encoder, backend=backend, device=device)
        if not quiet:
            typer.echo(_summary(idx))
            if encoder is not None and encoder.stats:
                st = encoder.stats
                where = "a local Ray cluster" if st["cluster"] == "local" else f"the Ray cluster at {st['cluster']}"
                typer.echo(f"embedded on {where} with {st['actors']} actor(s)")


ReaderOpt = typer.Option(
    None, "--reader",
    help="Short answers: qa-extract, none, or a Hugging Face extractive-QA model folder or cached name "
         "[default: qa-extract]",
)
RerankOpt = typer.Option(
    None, "--rerank",
    help="Second stage: a qa reranker name or folder, a sentence-transformers CrossEncoder name or folder, or "
         "'none' [default: qa-rerank-gbdt in hybrid mode]",
)


@app.command()
def ask(
    question: Optional[str] = typer.Argument(None, help="The question (or use --questions FILE)."),
    k: int = typer.Option(5, "-k", "--k", help="Number of sentences to return."),
    mode: str = typer.Option("hybrid", "--mode", "-m", help="bm25, dense or hybrid."),
    fusion: Optional[str] = typer.Option(None, "--fusion", help="Hybrid fusion: rrf or convex [default: the index default]"),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Convex fusion weight on BM25, 0..1."),
    context: int = typer.Option(0, "--context", "-c", help="Neighbouring sentences to show around each hit."),
    as_json: bool = typer.Option(False, "--json", help="JSON Lines output, one object per question."),
    questions: Optional[Path] = typer.Option(None, "--questions", help="Batch: one question a line, or JSONL {id, question}."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    color: Optional[bool] = typer.Option(None, "--color/--no-color", help="Highlight with ANSI colours [default: on a terminal]"),
    exact: bool = typer.Option(False, "--exact", help="Exhaustive dense search: no ANN file, no sign-bit first pass (indexes of 100k+ sentences)."),
    rerank: Optional[str] = RerankOpt,
    milvus: Optional[str] = MilvusOpt,
    collection: Optional[str] = CollectionOpt,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print where the time went: milliseconds per "
                                 "stage (embed, bm25, dense, fuse, rerank, short, total)."),
    reader: Optional[str] = ReaderOpt,
) -> None:
    """Answer a question with cited sentences: [article §n], character offsets, each retriever's score and a
    calibrated confidence; says so when the corpus does not seem to answer it."""
    with _errors():
        if (question is None) == (questions is None):
            raise QueryError("give a QUESTION or --questions FILE (exactly one)")
        from .options import AskOptions
        from .search import check_question

        # every check that needs no index comes first: a bad option never loads (or builds) an index or a model
        opts = AskOptions(k=k, mode=mode, fusion=fusion, alpha=alpha, context=context, exact=exact or None,
                          rerank=rerank, reader=reader)
        failed = 0  # batch: bad questions are reported one line each, the rest answered, then exit 2
        if questions is None:
            check_question(question)
            batch = [("1", question)]
        else:
            batch = []
            for qid, q in _read_questions(questions):
                try:
                    check_question(q)
                    batch.append((qid, q))
                except QueryError as e:
                    _err(f"question {qid}: {e}")
                    failed += 1
        if not batch:
            raise typer.Exit(QueryError.exit_code)
        if rerank is not None:
            from .rerank import load_reranker

            load_reranker(rerank)  # a bad --rerank fails once, before any question
        if reader is not None:
            from .extract import load_reader

            load_reader(reader)  # likewise a bad --reader
        idx = _open_index(index_dir, model, milvus, collection)
        vectors = None
        if (mode != "bm25" or opts.reranker != "none") and len(batch) > 1:
            vectors = idx.encoder.encode_queries([q for _, q in batch])
        use_color = sys.stdout.isatty() if color is None else color
        for i, (qid, q) in enumerate(batch):
            qv = vectors[i] if vectors is not None else None
            try:
                ans = idx.ask(q, options=opts, query_vector=qv)
            except QueryError as e:
                if questions is None:
                    raise
                _err(f"question {qid}: {e}")
                failed += 1
                continue
            if as_json:
                typer.echo(json.dumps(ans.to_dict(id=qid if questions is not None else None, timings=verbose),
                                      ensure_ascii=False))
            else:
                if i:
                    typer.echo("")
                _print_human(qid, ans, idx, use_color, show_id=questions is not None)
                if verbose and ans.timings_ms:
                    typer.echo("   time: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ans.timings_ms.items()))
        if failed:
            raise typer.Exit(QueryError.exit_code)


@app.command()
def info(
    index_dir: Optional[Path] = IndexDirOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the full description as JSON."),
    milvus: Optional[str] = MilvusOpt,
    collection: Optional[str] = CollectionOpt,
) -> None:
    """Describe the index: model, settings, counts, size and articles (checksums are verified)."""
    with _errors():
        from .store.base import open_store

        location, options = _location(index_dir, milvus, collection)
        store = open_store(location, verify=True, **options)
        d = store.info()
        if as_json:
            typer.echo(json.dumps(d, indent=2, ensure_ascii=False))
            return
        c = d["counts"]
        kind = {"milvus": "Milvus"}.get(d.get("store", ""), d.get("store", ""))
        where = d.get("folder") or (f"Milvus {d['milvus']}" if d.get("milvus") else d.get("location", "?"))
        typer.echo(f"index      {where}  (format v{d['format_version']}, qa {d['qa_version']}, {d['created']})")
        typer.echo(f"model      {d['model']['name']}  (dim {d['model']['dimension']})")
        b = d["bm25"]
        typer.echo(f"bm25       {b['method']} k1={b['k1']} b={b['b']}; tokenizer stem={d['tokenizer']['stemmer']} "
                   f"stopwords={d['tokenizer']['stopwords'] if isinstance(d['tokenizer']['stopwords'], str) else 'custom'}")
        typer.echo(f"segmenter  {d['segmenter']['name']} {d['segmenter']['version']}")
        if d.get("folder"):
            typer.echo(f"contents   {c['articles']} articles, {c['sentences']} sentences, {c['vocabulary']} terms, "
                       f"{d['bytes'] / 1e6:.2f} MB on disk (checksums OK)")
        else:
            typer.echo(f"contents   {c['articles']} articles, {c['sentences']} sentences (in {kind})")
        for line in _article_lines(d["articles"]):
            typer.echo(line)


@app.command()
def serve(
    index_dir: Optional[Path] = IndexDirOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback unless told otherwise)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", help="Server processes (each loads the index)."),
    cache: int = typer.Option(1024, "--cache", help="Answers kept per worker, per index generation (0: none)."),
    milvus: Optional[str] = MilvusOpt,
    collection: Optional[str] = CollectionOpt,
) -> None:
    """Serve qa over HTTP: GET/POST /ask (the objects `qa ask --json` prints), /info, /healthz, /openapi.json
    and a search page at /. Read-only; a folder index is picked up anew after each `qa index` build on the next
    request. Any store qa ask reads (--index-dir, --milvus)."""
    with _errors():
        if workers < 1:
            raise QueryError(f"--workers must be at least 1, got {workers}")
        if not 0 < port < 65536:
            raise QueryError(f"--port must be 1..65535, got {port}")
        if cache < 0:
            raise QueryError(f"--cache must be 0 or more, got {cache}")
        try:
            from . import serve as server
        except ImportError as e:
            raise QAError(f"qa serve needs FastAPI and uvicorn ({e}): reinstall qa (pip install -e .)") from None
        location, options = _location(index_dir, milvus, collection)
        if workers > 1 and not _is_folder(location, options) and location.endswith(".db"):
            raise QueryError("Milvus Lite (a .db file) allows one process at a time: use --workers 1, or a Milvus "
                             "server (http://host:19530)")
        idx = _open_index(index_dir, None, milvus, collection)
        typer.echo(f"qa serve: {len(idx)} sentences from {idx.location} on http://{host}:{port}/ "
                   f"({workers} worker{'s' if workers > 1 else ''}; Ctrl-C stops)", err=True)
        server.run(location, index=idx if workers == 1 else None, host=host, port=port, workers=workers, cache=cache,
                   options=options)


def _parse_modes(modes: str) -> list[str]:
    from .eval.runs import EVAL_MODES

    out = [m.strip() for m in modes.split(",") if m.strip()]
    bad = [m for m in out if m not in EVAL_MODES]
    if not out or bad:
        raise QueryError(f"--modes: unknown mode(s) {', '.join(bad) or '(none)'}: use a comma list of {', '.join(EVAL_MODES)}")
    return list(dict.fromkeys(out))


@app.command("eval")
def eval_(
    gold: Path = typer.Option(Path("eval/gold.jsonl"), "--gold", help="Gold questions (JSON Lines)."),
    modes: str = typer.Option("bm25,dense,hybrid,rerank", "--modes",
                              help="Comma list of rows: bm25, dense, hybrid (retrieval only) and rerank (hybrid + --rerank)."),
    split: str = typer.Option("test", "--split", help="dev, test or all."),
    squad: Optional[Path] = typer.Option(None, "--squad", help="Evaluate on a SQuAD v1.1 JSON file (ReQA protocol) instead."),
    fusion: Optional[str] = typer.Option(None, "--fusion", help="Hybrid fusion: rrf or convex [default: the index default]"),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Convex fusion weight on BM25, 0..1."),
    out: Path = typer.Option(Path("eval/runs"), "--out", help="Folder for the TREC run files and the JSON report."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report instead of tables."),
    index_dir: Optional[Path] = IndexDirOpt,
    model: Optional[str] = ModelOpt,
    title_context: Optional[bool] = typer.Option(
        None, "--title-context/--no-title-context",
        help="With --squad: index sentences with their article title [default: the index default]",
    ),
    rerank: Optional[str] = typer.Option(None, "--rerank", help="Reranker of the rerank row [default: qa-rerank-gbdt]"),
    milvus: Optional[str] = MilvusOpt,
    collection: Optional[str] = CollectionOpt,
    reader: Optional[str] = ReaderOpt,
) -> None:
    """Measure retrieval: P@1, R@5, MRR@10, nDCG@10, answer found in the top 5 and latency per mode.

    Writes one TREC run file per mode and a JSON report under --out, then scores the run files with ranx and
    tests hybrid against each single mode (paired randomization test). With --squad FILE: SQuAD v1.1 as
    sentence retrieval (ReQA): MRR and R@1/5/10 per mode, beside ReQA's plain BM25.
    """
    with _errors():
        mode_list = _parse_modes(modes)
        if reader is not None:
            from .extract import load_reader

            load_reader(reader)  # a bad --reader fails before any index is built or loaded
        if fusion is not None and fusion not in ("rrf", "convex"):
            raise QueryError(f"--fusion must be rrf or convex, got {fusion!r}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise QueryError(f"--alpha must be between 0 and 1, got {alpha}")
        if squad is not None:
            if milvus or collection:
                raise QueryError("--squad builds its own local work index; --milvus works with the gold set "
                                 "(benchmarks/milvus_store.py compares the stores on SQuAD)")
            from . import eval as reqa

            say = (lambda msg: typer.echo(msg, err=True)) if not as_json else None
            report = reqa.evaluate_squad(squad, modes=mode_list, out_dir=out, model=model, fusion=fusion, alpha=alpha,
                                         work_dir=out / "squad", progress=say, title_context=title_context,
                                         rerank=rerank, reader=reader)
            if as_json:
                typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
                return
            typer.echo(reqa.format_counts(report))
            typer.echo(reqa.format_table(report))
            ref = report["reqa_reference"]["bm25"]
            typer.echo(f"ReQA paper, plain BM25: MRR {ref['MRR']:.3f}  R@1 {ref['R@1']:.3f}  R@5 {ref['R@5']:.3f}  "
                       f"R@10 {ref['R@10']:.3f}")
            for extra in (reqa.format_halves(report), reqa.format_confidence(report), reqa.format_squad_short_answers(report)):
                if extra:
                    typer.echo(extra)
            _echo_tail(report)
            return
        from . import eval as ev

        if split not in ev.SPLITS:
            raise QueryError(f"--split must be dev, test or all, got {split!r}")
        questions = ev.load_gold(gold)
        idx = _open_index(index_dir, model, milvus, collection)
        report = ev.evaluate_gold(idx, questions, split=split, modes=mode_list, out_dir=out, fusion=fusion, alpha=alpha,
                                  rerank=rerank, reader=reader)
        if as_json:
            typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
            return
        typer.echo(ev.format_gold_header(report, gold))
        typer.echo(ev.format_table(report))
        _echo_tail(report)
        for extra in (ev.format_no_answer(report), ev.format_short_answers(report)):
            if extra:
                typer.echo(extra)


def _echo_tail(report: dict) -> None:
    from .eval.report import format_significance

    sig = format_significance(report)
    if sig:
        typer.echo(sig)
    files = [m["run_file"] for m in report["modes"].values()]
    typer.echo(f"runs: {', '.join(files)}; report: {report['report_file']}")


def main() -> None:  # console-script entry point
    """Run the CLI; a bad option value (``-k abc``) is one ``error:`` line and exit 2, like every qa error."""
    if len(sys.argv) > 1 and sys.argv[1] in ("ask", "eval"):
        from .threads import apply

        apply()  # a qa ask / qa eval process answers on qa's query-time thread budget (qa/threads.py)
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")  # click's (typer vendors it)
    try:
        rc = app(standalone_mode=False)
    except usage_error as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # plain `qa`: the help, as usual
            e.show()
        else:
            _err(" ".join(e.format_message().split()))
        sys.exit(e.exit_code)
    except typer.Abort:
        _err("interrupted")
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
