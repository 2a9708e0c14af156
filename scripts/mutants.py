"""Mutation testing of the money code: does the suite notice when a money rule breaks?

Each mutant is one small change to one target module (a comparison flipped, ``and``/``or``
swapped, a ``not`` dropped, a number, flag or ledger state changed, a statement or a return
value removed, ``+=`` turned into ``-=``). A mutant is *killed* when its module's test selection
fails; a *survivor* is a rule no test pins down.

Why not mutmut 3 / cosmic-ray: mutmut 3 only mutates inside functions (not ``MAX_MISSES = 3``,
``may_have_created = True`` or the ledger's state tables), changes strings to ``"XX..XX"``
instead of swapping ledger states, and is configured in pyproject.toml; cosmic-ray starts a
fresh interpreter per mutant (~5 s of imports on this machine) for some 600 mutants.

How it stays fast without touching the working files: one parent process imports the heavy
dependencies once, then forks a child per mutant. The child compiles the mutated module in
memory and swaps the mutated function's ``__code__`` (or the mutated module/class constant) into
the already imported module, then runs pytest in-process. A traced baseline run first records
which tests call which function, so a mutant runs only the tests that reach it, fastest first,
with ``-x`` and a timeout. Tests that start other processes (the CLI) cannot see an in-memory
mutant and are left out of the selection.

    python scripts/mutants.py                      # every module, report on stdout
    python scripts/mutants.py --module ledger --jobs 2 --json /tmp/m.json
    python scripts/mutants.py --rerun /tmp/m.json  # only the previous survivors
    python scripts/mutants.py --list --module budget
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import types
from dataclasses import asdict
from pathlib import Path

from mutant_sites import ROOT, Mutant, generate, mutated_code

_KILLERS = ("tests/batch/test_mutant_killers.py",)
_MONEY = (*_KILLERS, "tests/batch/test_money_units.py", "tests/batch/test_money_holes.py")
_ENGINE = (*_MONEY, "tests/batch/test_engine.py", "tests/batch/test_faults.py", "tests/batch/test_submit_only.py",
           "tests/batch/test_artifacts.py", "tests/batch/test_webhooks.py")
_ERRORS = ("tests/api/test_error_mutants.py", "tests/api/test_errors.py", "tests/api/test_garbled_answers.py",
           "tests/batch/test_money_units.py")
#: Target module -> the test files whose tests may kill its mutants.
TARGETS: dict[str, tuple[str, ...]] = {
    "akool_flows/batch/ledger.py": _MONEY,
    "akool_flows/batch/ledger_file.py": _MONEY,
    "akool_flows/batch/ledger_claims.py": _MONEY,
    "akool_flows/batch/budget.py": _MONEY,
    "akool_flows/batch/outcomes.py": _MONEY,
    "akool_flows/batch/engine.py": _ENGINE,
    "akool_flows/batch/reconcile.py": _ENGINE,
    "akool_flows/api/errors.py": _ERRORS,
    # A run over an input in chunks: repeats across chunks counted once, one budget, every row once.
    "akool_flows/batch/chunked.py": ("tests/batch/test_chunked_run.py",),
    "akool_flows/batch/plan_stream.py": ("tests/batch/test_plan_stream.py",),
}
#: Tests that run the money code in other processes (the CLI): an in-memory mutant is invisible
#: there, so they only cost time.
SUBPROCESS_TESTS = ("test_three_runs_starting_at_once_on_a_new_ledger",
                    "test_paused_run_past_its_lease_stops_and_nothing_is_paid_twice")

# --- applying a mutant inside a forked child ----------------------------------------------------

def _module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _raw(owner, name):
    """The function object behind a module or class attribute (through property, static/class
    method and functools.wraps decorators)."""
    obj = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    obj = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj
    while hasattr(obj, "__wrapped__"):
        obj = obj.__wrapped__
    return obj


def _resolve(module, qualname: str):
    parts = qualname.split(".")
    owner = module
    for p in parts[:-1]:
        owner = getattr(owner, p)
    return owner, parts[-1]


_MISSING = object()


def apply_mutant(m: Mutant) -> None:
    live = importlib.import_module(_module_name(m.path))
    code, _, _ = mutated_code(m.path, m.index)
    fresh = types.ModuleType(live.__name__)
    fresh.__file__ = live.__file__
    exec(code, fresh.__dict__)  # noqa: S102 - our own module, mutated
    if m.scope == "func":
        owner, name = _resolve(live, m.qualname)
        old, new = _raw(owner, name), _raw(*_resolve(fresh, m.qualname))
        old.__defaults__, old.__kwdefaults__ = new.__defaults__, new.__kwdefaults__
        if len(old.__code__.co_freevars) == len(new.__code__.co_freevars):
            old.__code__ = new.__code__
        else:  # the mutant dropped the only use of a closure cell (``super()``): a new function
            func = types.FunctionType(new.__code__, old.__globals__, old.__name__, new.__defaults__)
            func.__kwdefaults__, func.__qualname__ = new.__kwdefaults__, old.__qualname__
            setattr(owner, name, func)
        return
    owner_live = _resolve(live, m.qualname + ".x")[0] if m.qualname else live
    owner_new = _resolve(fresh, m.qualname + ".x")[0] if m.qualname else fresh
    for name in m.names:
        old_value, new_value = getattr(owner_live, name, None), getattr(owner_new, name, _MISSING)
        if new_value is _MISSING:
            continue  # a slots dataclass field: its default lives in __init__ (below)
        setattr(owner_live, name, new_value)
        if m.scope == "module":  # `from x import NAME` copies elsewhere
            for mod in list(sys.modules.values()):
                if getattr(mod, "__dict__", {}).get(name, object()) is old_value:
                    setattr(mod, name, new_value)
    init_new = getattr(owner_new, "__init__", None)
    if m.scope == "class" and hasattr(owner_live, "__dataclass_fields__"):  # field defaults
        owner_live.__init__.__defaults__ = init_new.__defaults__
        owner_live.__init__.__kwdefaults__ = init_new.__kwdefaults__


# --- running tests in forked children ------------------------------------------------------------

PRELOAD = ("pandas", "httpx", "aiohttp", "pydantic", "pytest", "pytest_asyncio", "pytest_timeout", "hypothesis",
           "akool_flows.api", "akool_flows.batch.engine", "akool_flows.batch.runner", "akool_flows.sandbox",
           "akool_flows.webhook", "tests.conftest")


class _Recorder:
    """pytest plugin: per test, its duration, the target functions it ran (when tracing) and
    whether it failed."""

    def __init__(self, codes: dict[types.CodeType, str] | None) -> None:
        self.current, self.hits, self.durations, self.failed, self.failures = "", {}, {}, "", []
        if codes:
            def hook(frame, event, arg):
                where = codes.get(frame.f_code)
                if where is not None:
                    self.hits.setdefault(self.current, set()).add(where)
            import threading

            sys.settrace(hook)
            threading.settrace(hook)

    def pytest_runtest_logstart(self, nodeid, location):
        self.current = nodeid

    def pytest_runtest_logreport(self, report):
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self.failed = self.failed or report.nodeid
            self.failures.append(report.nodeid)

    def result(self) -> dict:
        return {"durations": self.durations, "failed": self.failed, "failures": self.failures,
                "hits": {k: sorted(v) for k, v in self.hits.items()}}


def _code_map(paths: list[str]) -> dict[types.CodeType, str]:
    """Every code object of the target modules -> ``path::qualname`` of the function a mutant
    would patch (nested functions and comprehensions count as their enclosing function)."""
    out: dict[types.CodeType, str] = {}

    def add(code, where):
        out[code] = where
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                add(const, where)

    for path in paths:
        mod = importlib.import_module(_module_name(path))
        for name, obj in vars(mod).items():
            if getattr(obj, "__module__", None) != mod.__name__:
                continue
            if isinstance(obj, type):
                for attr in list(vars(obj)):
                    fn = _raw(obj, attr)
                    if isinstance(fn, types.FunctionType):
                        add(fn.__code__, f"{path}::{name}.{attr}")
            elif isinstance(_raw(mod, name), types.FunctionType):
                add(_raw(mod, name).__code__, f"{path}::{name}")
    return out


def _fork(pytest_args: list[str], mutant: Mutant | None, out: Path, codes=None) -> int:
    pid = os.fork()
    if pid:
        return pid
    rc = 99
    try:
        os.setpgid(0, 0)
        fd = os.open(out.with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        if mutant is not None:
            apply_mutant(mutant)
        import pytest

        rec = _Recorder(codes)
        rc = int(pytest.main(pytest_args, plugins=[rec]))
        sys.settrace(None)
        out.write_text(json.dumps(rec.result()))
    except BaseException:  # noqa: BLE001 - reported through the exit code and the log
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def _pytest_args(tests: list[str], tmp: Path) -> list[str]:
    return [*tests, "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", "--basetemp", str(tmp),
            "-k", " and ".join(f"not {t}" for t in SUBPROCESS_TESTS), "-W", "ignore"]


def baseline(paths: list[str], work: Path) -> dict:
    files = sorted({f for p in paths for f in TARGETS[p] if (ROOT / f).exists()}, key=lambda f: f.count("killer"))
    out = work / "baseline.json"
    t0 = time.monotonic()
    args = [a for a in _pytest_args(files, work / "baseline-tmp") if a != "-x"]
    pid = _fork(args, None, out, codes=_code_map(paths))
    _, status = os.waitpid(pid, 0)
    if not out.exists():
        print(out.with_suffix(".log").read_text()[-4000:])
        sys.exit("the unmutated baseline did not run (its log is above)")
    data = json.loads(out.read_text())
    for bad in data["failures"]:  # flaky under load: it would "kill" every mutant it runs for
        print(f"baseline: {bad} fails without any mutant; left out of the selection", flush=True)
        data["hits"].pop(bad, None)
    print(f"baseline: {len(data['durations'])} tests in {time.monotonic() - t0:.0f}s (traced)", flush=True)
    return data


def _warm(files: list[str]) -> None:
    """Import, in the parent, everything a child's pytest run would import (plugins, conftests,
    assertion-rewritten test modules), then freeze the heap: a child then starts in about a second
    instead of ten, and its gc.collect() calls skip the inherited objects."""
    import gc

    for name in PRELOAD:
        importlib.import_module(name)
    import pytest

    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        pytest.main([*files, "--collect-only", "-q", "-p", "no:cacheprovider", "-W", "ignore"])
    finally:
        sys.stdout.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(null)
    gc.freeze()


def tests_for(m: Mutant, base: dict) -> list[str]:
    files = TARGETS[m.path]
    if m.scope == "func":
        wanted = {f"{m.path}::{m.qualname}"}.__contains__
    elif m.users is not None:
        wanted = {f"{m.path}::{u}" for u in m.users}.__contains__
    else:
        wanted = lambda hit: hit.startswith(f"{m.path}::")  # noqa: E731
    chosen = [t for t, hit in base["hits"].items() if t.split("::")[0] in files and any(map(wanted, hit))]
    return sorted(chosen, key=lambda t: base["durations"].get(t, 1.0))


def run(mutants: list[Mutant], base: dict, work: Path, jobs: int) -> None:
    running: dict[int, tuple] = {}
    try:
        _loop(mutants, base, work, jobs, running)
    finally:  # interrupted: no child (nor its sandbox threads or subprocesses) outlives the run
        for pid in running:
            with _suppress():
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def _loop(mutants: list[Mutant], base: dict, work: Path, jobs: int, running: dict[int, tuple]) -> None:
    queue, done = list(mutants), 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    while queue or running:
        while queue and len(running) < jobs:
            m = queue.pop(0)
            tests = tests_for(m, base)
            if not tests:
                m.status, m.killed_by = "survived", "(no test runs this code)"
                done += 1
                _progress(done, len(mutants), m)
                continue
            took = [base["durations"].get(t, 1.0) for t in tests]
            # A hung test fails on its own (pytest-timeout) well before the whole child is killed.
            per_test = ["--timeout", str(int(15 + 4 * max(took)))]
            limit = 30 + 2 * sum(took)
            out = work / f"{m.id.replace(':', '-')}.json"
            pid = _fork([*_pytest_args(tests, work / f"tmp-{m.index}-{Path(m.path).stem}"), *per_test], m, out)
            running[pid] = (m, time.monotonic(), limit, out)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for cpid, (m, t0, limit, _) in running.items():
                if now - t0 > limit:
                    with _suppress():
                        os.killpg(cpid, signal.SIGKILL)
                    m.status = "timeout"
            time.sleep(0.05)
            continue
        m, t0, _, out = running.pop(pid)
        m.seconds = round(time.monotonic() - t0, 1)
        code = os.waitstatus_to_exitcode(status)
        if m.status != "timeout":
            m.status = {0: "survived", 1: "killed", 2: "killed"}.get(code, "killed" if code < 0 else "error")
        if out.exists():
            m.killed_by = json.loads(out.read_text())["failed"]
            out.unlink()
        if m.status != "error":
            out.with_suffix(".log").unlink(missing_ok=True)
        shutil.rmtree(work / f"tmp-{m.index}-{Path(m.path).stem}", ignore_errors=True)
        done += 1
        _progress(done, len(mutants), m)


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError | ChildProcessError)


def _progress(done: int, total: int, m: Mutant) -> None:
    detail = f" <- {m.killed_by}" if m.status == "killed" else ""
    if m.status in ("survived", "error"):
        detail = f"\n        {m.path}:{m.line} {m.op}: {m.before}  =>  {m.after} {m.killed_by}"
    print(f"[{done:4}/{total}] {m.status:8} {m.id:16} {m.seconds:5.1f}s{detail}", flush=True)


def summary(mutants: list[Mutant]) -> float:
    print(f"\n{'module':32} {'mutants':>7} {'killed':>7} {'timeout':>7} {'survived':>8} {'error':>5}  score")
    rows = {}
    for m in mutants:
        rows.setdefault(m.path, []).append(m.status)
    rows["total"] = [m.status for m in mutants]
    for path, st in rows.items():
        caught = st.count("killed") + st.count("timeout")
        print(f"{path:32} {len(st):7} {st.count('killed'):7} {st.count('timeout'):7} {st.count('survived'):8} "
              f"{st.count('error'):5}  {100 * caught / max(1, len(st)):5.1f}%")
    st = rows["total"]
    return 100 * (st.count("killed") + st.count("timeout")) / max(1, len(st))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", action="append", help="only target modules whose path contains this")
    ap.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1: the machine is shared)")
    ap.add_argument("--json", help="write every mutant and its fate here")
    ap.add_argument("--rerun", action="append", help="only the mutants not killed in these earlier --json reports")
    ap.add_argument("--only", action="append", help="only this mutant id (e.g. ledger:12)")
    ap.add_argument("--sample", type=int, default=1, metavar="N", help="only every N-th mutant (a quick estimate)")
    ap.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    ap.add_argument("--check", metavar="ID", help="apply this one mutant here and run pytest with the rest of "
                    "the arguments (e.g. --check ledger:12 tests/batch/test_mutant_killers.py -k claim)")
    ap.add_argument("--min-score", type=float, default=0.0, help="exit 1 below this score (percent)")
    args, rest = ap.parse_known_args(argv)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    paths = [p for p in TARGETS if not args.module or any(s in p for s in args.module)]
    mutants = [m for p in paths for m in generate(p)]
    if args.only:
        mutants = [m for m in mutants if m.id in args.only]
    mutants = [m for m in mutants if m.index % args.sample == 0]
    kept: list[Mutant] = []
    if args.rerun:  # tests only grow between the runs: a mutant killed then is killed now
        old = {d["id"]: d for f in args.rerun for d in json.loads(Path(f).read_text())["mutants"]}
        same = {m.id for m in mutants if m.id in old and old[m.id]["status"] in ("killed", "timeout")
                and (old[m.id]["line"], old[m.id]["before"], old[m.id]["after"]) == (m.line, m.before, m.after)}
        kept = [Mutant(**old[i]) for i in sorted(same)]
        mutants = [m for m in mutants if m.id not in same]
    if args.check:
        import pytest

        (m,) = [m for m in mutants if m.id == args.check]
        print(f"{m.path}:{m.line} {m.op}: {m.before}  =>  {m.after}", flush=True)
        apply_mutant(m)
        return 0 if pytest.main(["-x", "-q", "-p", "no:cacheprovider", *rest]) == 1 else 1  # 0: killed
    if args.list:
        for m in mutants:
            print(f"{m.id:16} {m.path}:{m.line} [{m.scope} {m.qualname}] {m.op}: {m.before}  =>  {m.after}")
        print(f"{len(mutants)} mutants")
        return 0
    t0 = time.monotonic()
    _warm(sorted({f for m in mutants for f in TARGETS[m.path] if (ROOT / f).exists()}))
    with tempfile.TemporaryDirectory(prefix="mutants-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        try:
            base = baseline(sorted({m.path for m in mutants}), work)
            run(mutants, base, work, args.jobs)
        finally:  # a child killed mid-test can leave the full-disk test's tmpfs mounted
            for line in Path("/proc/mounts").read_text().splitlines():
                if line.split()[1].startswith(tmp):
                    os.system(f"umount -l {line.split()[1]}")  # noqa: S605 - our own temp dir
    if kept:
        print(f"\n{len(mutants)} mutants run now, {len(kept)} killed in {', '.join(args.rerun)} kept as they were")
    mutants = sorted([*kept, *mutants], key=lambda m: (list(TARGETS).index(m.path), m.index))
    score = summary(mutants)
    print(f"\nscore: {score:.1f}% of {len(mutants)} mutants caught in {time.monotonic() - t0:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps({"score": score, "mutants": [asdict(m) for m in mutants]}, indent=1))
    return 0 if score >= args.min_score else 1


if __name__ == "__main__":
    sys.exit(main())
