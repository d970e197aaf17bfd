"""A `kmigrate rewrite` run: find the files, prefilter them, parse and rewrite in worker processes,
write atomically, and turn the results into a summary and an exit code.

libcst's parser is native code: deeply nested input (about 1,300 nested brackets, or a 10,000-term
expression) crashes it with SIGSEGV, which no `except` can catch. So every file that passes the byte
prefilter is parsed in a worker process (with `-j 1` too); a worker that dies costs only its own file,
which gets a one-line error, and is replaced. Files without a Keras marker never reach a worker, so the
usual pre-commit run (a handful of files, most without Keras code) starts no process at all.

Workers only compute; this process does every write, so a write is always reported, Ctrl-C or a kill
never leaves a worker writing, and workers die with this process (Linux) or at their next message.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

from kmigrate import atomic
from kmigrate.diagnostics import Diagnostic, FileResult, Severity, Status
from kmigrate.rewrite.files import failed, kind_of, needs_parse, process_data
from kmigrate.rewrite.walk import discover, read_regular
from kmigrate.spec.loader import default_ruleset
from kmigrate.spec.model import Options

EXIT_OK, EXIT_CHANGED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
NO_MARKER = "no Keras marker"


@dataclass(frozen=True)
class Settings:
    """What a run does, once the command line and the configuration are merged."""

    options: Options = Options()
    write: bool = True  # False under --check / --diff
    jobs: int = 1
    py2: bool = False
    exit_zero_even_if_changed: bool = False
    force_exclude: bool = False
    exclude: tuple[Path | None, tuple[str, ...]] = (None, ())  # (folder the patterns are relative to, patterns)
    respect_gitignore: bool = True
    texts: bool = True  # results keep the old and new text (--diff); False: only the bytes to write


class UnknownRules(ValueError):
    """Rule ids that no rule has; `source` says where they came from (an option, or the config file)."""

    def __init__(self, source: str, unknown: list[str], known: list[str]):
        super().__init__(f"unknown rule id {', '.join(unknown)}; valid ids: {', '.join(known)}")
        self.source = source


def _rule_ids(values, source: str) -> frozenset[str]:
    ids = frozenset(i.strip() for v in values for i in v.split(",") if i.strip())
    known = default_ruleset().by_id
    unknown = sorted(ids - set(known))
    if unknown:
        raise UnknownRules(source, unknown, sorted(known))
    return ids


def resolve(config, *, only=(), skip=(), default_dim_ordering=None, backend=None, jobs=None, py2=None,
            exclude=(), force_exclude=None, write=True, exit_zero_even_if_changed=False, texts=True) -> Settings:
    """The run's settings from the command line's values (None / empty: not given) over the
    [tool.kmigrate] table of `config`; raises UnknownRules."""
    where = f"{config.path} [tool.kmigrate]"
    only_ids = _rule_ids(only, "--only") if only else _rule_ids(config.get("only", ()), f"{where} only")
    skip_ids = _rule_ids(skip, "--skip") if skip else _rule_ids(config.get("skip", ()), f"{where} skip")
    options = Options(default_dim_ordering=default_dim_ordering or config.get("default-dim-ordering"),
                      backend=backend or config.get("backend"), only=only_ids or None, skip=skip_ids)
    return Settings(
        options=options, write=write, jobs=jobs or config.get("jobs", 1),
        py2=py2 if py2 is not None else config.get("py2", False),
        exit_zero_even_if_changed=exit_zero_even_if_changed, texts=texts,
        force_exclude=force_exclude if force_exclude is not None else config.get("force-exclude", False),
        # patterns given on the command line are relative to where it runs; the file's, to the file
        exclude=(Path.cwd(), tuple(exclude)) if exclude else (config.root, tuple(config.get("exclude", ()))))


@dataclass
class Run:
    """Every file's result, in the order they finished, and whether Ctrl-C cut the run short."""

    settings: Settings
    results: list[FileResult] = field(default_factory=list)
    interrupted: bool = False
    to_stdout: bool = False  # stdin mode: the rewrite went to stdout, nothing was rewritten in place

    def counts(self) -> Counter:
        c = Counter()
        for r in self.results:
            if r.status is Status.CHANGED:
                c["changed"] += 1
            elif r.status is Status.UNCHANGED or (r.status is Status.SKIPPED and r.note == NO_MARKER):
                if not r.has_errors:
                    c["unchanged"] += 1
            elif r.status is Status.SKIPPED:
                c["skipped"] += 1
            if r.has_errors:
                c["errors"] += 1
        return c

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        c = self.counts()
        if c["errors"]:
            return EXIT_ERROR
        if c["changed"] and not self.settings.exit_zero_even_if_changed:
            # stdin -> stdout is a filter (an editor's formatter): printing the rewrite is success
            return EXIT_OK if self.to_stdout and self.settings.write else EXIT_CHANGED
        return EXIT_OK

    def summary(self) -> str:
        """One line, black's way: `3 files rewritten, 12 files left unchanged, 1 file with errors`."""
        c = self.counts()

        def n(k: int, what: str) -> str:
            return f"{k} file{'' if k == 1 else 's'} {what}"

        parts = []
        if c["changed"]:
            parts.append(n(c["changed"], "rewritten" if self.settings.write else "would be rewritten"))
        if c["unchanged"]:
            parts.append(n(c["unchanged"], "left unchanged"))
        if c["skipped"]:
            parts.append(n(c["skipped"], "skipped"))
        if c["errors"]:
            parts.append(n(c["errors"], "with errors"))
        line = ", ".join(parts) or "no files to rewrite"
        return f"interrupted: {line}" if self.interrupted else line


class _Interrupt:
    """Ctrl-C sets a flag the loop checks, instead of raising wherever the main thread happens to be:
    a file being written is finished and reported, then the run stops."""

    def __init__(self):
        self.set = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.set = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _context():
    import multiprocessing  # only when some file needs parsing: most pre-commit runs never get here

    # fork: a worker starts in milliseconds with the rules already loaded by this process
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:  # noqa: BLE001 - best effort; the pipe's EOF stops us anyway
            pass
    if os.getppid() != parent:
        os._exit(0)


def _worker(conn, parent: int, options: Options, py2: bool, texts: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent(parent)
    ruleset = default_ruleset()
    # The cyclic garbage collector ran every few hundred allocations over libcst's millions of nodes
    # (about a sixth of the CPU time): what is loaded now is set aside for good, and the garbage of
    # one input is collected once, after its result is sent.
    gc.freeze()
    gc.disable()
    parser_loaded = False
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        index, name, data = task
        try:
            # every task passed the byte prefilter in the parent (run, run_data)
            result = process_data(name, data, options, ruleset, py2, kind_of(name), prefiltered=True)
            if not texts and result.old_text is not None:
                result = replace(result, old_text=None, new_text=None)  # not sent back through the pipe
            conn.send((index, result))
        except (BrokenPipeError, OSError):
            return
        gc.collect()
        if not parser_loaded and "libcst" in sys.modules:
            # libcst is imported by the first input that needs it (an already-migrated file usually
            # does not): its modules are set aside too, once this input's garbage is gone
            parser_loaded = True
            gc.freeze()


def _crashed(name: str, exitcode: int | None) -> FileResult:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exit code {exitcode}"
    return failed(name, f"the parser crashed on this file ({how}; very deep nesting does this to "
                        "libcst's native parser): left as is")


class Pool:
    """Worker processes that each rewrite one input at a time; a worker that dies is replaced and its
    input reported as crashed."""

    def __init__(self, size: int, options: Options, py2: bool, texts: bool = True):
        # libcst is not loaded here: a worker imports it when an input needs it (most already-migrated
        # files are decided by the `ast` reading alone), and with -j 2 two workers import it at once
        default_ruleset()
        self.size, self.options, self.py2, self.texts = max(1, size), options, py2, texts
        self.ctx = _context()
        self.workers: dict = {}  # connection -> [process, task or None]

    def _spawn(self):
        parent_conn, child_conn = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child_conn, os.getpid(), self.options, self.py2, self.texts),
                                daemon=True)
        proc.start()
        child_conn.close()
        self.workers[parent_conn] = [proc, None]
        return parent_conn

    def run(self, tasks: Iterator[tuple[int, str, bytes]], stop: Callable[[], bool]
            ) -> Iterator[tuple[int, FileResult]]:
        """Yield (index, result) as inputs finish; stops early (killing the workers) when `stop()`."""
        from multiprocessing.connection import wait

        def feed(conn) -> bool:
            task = next(tasks, None)
            if task is None:
                self.workers[conn][1] = None
                return False
            self.workers[conn][1] = task
            conn.send(task)
            return True

        try:
            for _ in range(self.size):
                conn = self._spawn()
                if not feed(conn):
                    self._retire(conn)
                    break
            while self.workers and not stop():
                for conn in wait(list(self.workers), timeout=0.1):
                    proc, task = self.workers[conn]
                    try:
                        index, result = conn.recv()
                    except (EOFError, OSError):  # the worker died: native crash, OOM kill ...
                        proc.join()
                        self.workers.pop(conn)
                        conn.close()
                        if task is not None:
                            yield task[0], _crashed(task[1], proc.exitcode)
                        if not stop():
                            new = self._spawn()
                            if not feed(new):
                                self._retire(new)
                        continue
                    yield index, result
                    if stop() or not feed(conn):
                        self._retire(conn)
        finally:
            self.close()

    def _retire(self, conn) -> None:
        proc, _ = self.workers.pop(conn)
        try:
            conn.send(None)
        except OSError:
            pass
        conn.close()
        proc.join(timeout=1)
        if proc.is_alive():
            proc.kill()
            proc.join()

    def close(self) -> None:
        """Stop every worker now (they never write, so killing one loses nothing)."""
        for conn, (proc, _) in list(self.workers.items()):
            proc.kill()
            proc.join()
            conn.close()
        self.workers.clear()


def run(paths: Iterable[str], settings: Settings,
        on_result: Callable[[FileResult], None] | None = None) -> Run:
    """Rewrite (or check) every file under `paths`; `on_result` sees each result as soon as it is final
    (after its file was written). Never raises for a bad file."""
    outcome = Run(settings)

    def emit(result: FileResult) -> None:
        outcome.results.append(result)
        if on_result:
            on_result(result)

    found = discover(paths, settings.exclude, settings.force_exclude, settings.respect_gitignore)
    for result in found.results:
        emit(result)
    if settings.write:
        for folder, names in found.folders.items():
            atomic.clean_stale(folder, names)
    ruleset = default_ruleset()
    files = found.files

    with _Interrupt() as interrupt:
        def tasks() -> Iterator[tuple[int, str, bytes]]:
            for index, path in enumerate(files):
                if interrupt.set:
                    return
                try:
                    data = read_regular(path)
                except OSError as exc:
                    emit(failed(str(path), f"cannot read: {exc.strerror or exc}"))
                    continue
                if not needs_parse(data, ruleset):
                    emit(FileResult(str(path), Status.SKIPPED, note=NO_MARKER))
                    continue
                yield index, str(path), data

        pending = tasks()
        first = next(pending, None)
        if first is not None:
            def all_tasks():
                yield first
                yield from pending

            pool = Pool(min(settings.jobs, len(files)), settings.options, settings.py2, settings.texts)
            for index, result in pool.run(all_tasks(), lambda: interrupt.set):
                emit(_finish(files[index], result, settings.write))
        outcome.interrupted = interrupt.set
    return outcome


def _finish(path: Path, result: FileResult, write: bool) -> FileResult:
    """Write a changed file (atomically, through its link if it is one) before it is reported."""
    if write and result.status is Status.CHANGED and result.new_data is not None:
        try:
            atomic.write_bytes(path, result.new_data)
        except OSError as exc:
            return FileResult(result.path, Status.FAILED, result.diagnostics + [
                Diagnostic(Severity.ERROR, "file", f"cannot write: {exc.strerror or exc}", 0, 0, result.path)])
    return result


def run_data(name: str, data: bytes, settings: Settings) -> tuple[Run, bytes]:
    """One in-memory input (stdin), parsed in a worker like any file: the run and the bytes to print
    (the input itself when nothing changed, it failed, it is excluded, or Ctrl-C stopped it)."""
    from kmigrate.rewrite.walk import force_excluded

    outcome = Run(settings, to_stdout=True)
    if settings.force_exclude and name != "-" and force_excluded(name, settings.exclude):
        outcome.results.append(FileResult(name, Status.SKIPPED, note="excluded (--force-exclude)"))
        return outcome, data
    if not needs_parse(data, default_ruleset()):
        outcome.results.append(FileResult(name, Status.SKIPPED, note=NO_MARKER))
        return outcome, data
    with _Interrupt() as interrupt:
        pool = Pool(1, settings.options, settings.py2, settings.texts)
        for _, result in pool.run(iter([(0, name, data)]), lambda: interrupt.set):
            outcome.results.append(result)
        outcome.interrupted = interrupt.set
    changed = outcome.results and outcome.results[0].status is Status.CHANGED
    return outcome, (outcome.results[0].new_data if changed else data)
