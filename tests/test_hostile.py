"""Hostile input never costs a tree: native parser crashes, FIFOs, unreadable folders, symlinks, bare-CR
files, stdin encodings, Ctrl-C, SIGKILL at random moments, temporary files left by killed runs."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kmigrate import atomic

KERAS1 = "from keras.layers import Convolution2D\nlayer = Convolution2D(8, 3, 3, border_mode='same')\n"
KERAS2 = "from keras.layers import Conv2D\nlayer = Conv2D(8, (3, 3), padding='same')\n"
DEEP_PARENS = "import keras\nx = " + "(" * 1300 + "1" + ")" * 1300 + "\n"
LONG_SUM = "import keras\nx = " + " + ".join(["1"] * 10000) + "\n"


def _kmigrate(*args, **kw):
    return subprocess.run([sys.executable, "-m", "kmigrate", *args], capture_output=True, text=True, **kw)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_native_parser_crash_costs_only_its_file(tmp_path, jobs):
    (tmp_path / "a_deep.py").write_text(DEEP_PARENS)
    (tmp_path / "b_good.py").write_text(KERAS1)
    (tmp_path / "c_sum.py").write_text(LONG_SUM)
    (tmp_path / "d_good.py").write_text(KERAS1)
    started = time.time()
    result = _kmigrate("rewrite", "-j", jobs, str(tmp_path), timeout=120)
    assert result.returncode == 2, result.stderr
    assert time.time() - started < 20
    assert "Traceback" not in result.stderr and "BrokenProcessPool" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if "a_deep.py" in x]  # SIGSEGV in libcst's parser
    assert len(lines) == 1 and "error [file] the parser crashed on this file (killed by SIGSEGV" in lines[0]
    # where CPython's parser gives up at once, libcst would grind for minutes before crashing: refused fast
    lines = [x for x in result.stderr.splitlines() if "c_sum.py" in x]
    assert len(lines) == 1 and "error [file] too deeply nested: CPython's own parser gives up" in lines[0]
    assert (tmp_path / "a_deep.py").read_text() == DEEP_PARENS
    assert (tmp_path / "b_good.py").read_text() == KERAS2 and (tmp_path / "d_good.py").read_text() == KERAS2
    assert result.stderr.strip().splitlines()[-1] == "2 files rewritten, 2 files with errors"


def test_native_parser_crash_on_stdin_is_one_line(tmp_path):
    result = _kmigrate("rewrite", "-", input=DEEP_PARENS, timeout=60)
    assert result.returncode == 2
    assert result.stdout == DEEP_PARENS  # the input passes through untouched
    assert result.stderr.strip().startswith("-:0:0: error [file] the parser crashed")
    assert len(result.stderr.strip().splitlines()) == 1


def test_fifo_named_py_never_hangs_the_run(tmp_path):
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    (tmp_path / "good.py").write_text(KERAS1)
    result = _kmigrate("rewrite", "-v", str(tmp_path), timeout=60)  # found in a folder: skipped
    assert result.returncode == 1, result.stderr
    assert f"skipped {fifo} (not a regular file)" in result.stderr
    assert (tmp_path / "good.py").read_text() == KERAS2
    result = _kmigrate("rewrite", str(fifo), timeout=60)  # named explicitly: an error, not a hang
    assert result.returncode == 2
    assert f"{fifo}:0:0: error [file] cannot read: not a regular file" in result.stderr


def test_unreadable_subfolder_is_reported_and_the_rest_processed(tmp_path, run_cli, monkeypatch):
    from kmigrate.rewrite import walk

    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "x.py").write_text(KERAS1)
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "y.py").write_text(KERAS1)
    locked = tmp_path / "locked"
    if os.geteuid() == 0:  # root reads any folder: make the listing fail the way EACCES does
        real = os.scandir

        def scandir(path):
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(walk.os, "scandir", scandir)
    else:
        locked.chmod(0)
    try:
        code, out, err = run_cli("rewrite", str(tmp_path))
    finally:
        locked.chmod(0o755)
    assert code == 2
    assert f"{locked}:0:0: error [file] cannot read folder: Permission denied" in err
    assert (tmp_path / "ok" / "y.py").read_text() == KERAS2


def test_symlinks(tmp_path, run_cli):
    tree = tmp_path / "tree"
    tree.mkdir()
    target = tree / "real.py"
    target.write_text(KERAS1)
    (tree / "link.py").symlink_to(target)
    outside = tmp_path / "outside.py"
    outside.write_text(KERAS1)
    (tree / "out_link.py").symlink_to(outside)
    (tree / "dir_link").symlink_to(tmp_path, target_is_directory=True)  # a cycle if it were followed
    code, out, err = run_cli("rewrite", "-v", str(tree))
    assert code == 1, err
    # the target inside the tree is rewritten once, the links stay links
    assert target.read_text() == KERAS2 and (tree / "link.py").is_symlink()
    assert err.count("rewrote") == 1
    # a link out of the walked folder is not followed, and says so
    assert outside.read_text() == KERAS1
    assert f"skipped {tree / 'out_link.py'} (symbolic link to {outside}, outside the folder: not followed)" in err
    # named explicitly, a link is followed: its target is rewritten, the link kept
    code, out, err = run_cli("rewrite", str(tree / "out_link.py"))
    assert code == 1 and outside.read_text() == KERAS2 and (tree / "out_link.py").is_symlink()


def test_bare_cr_file_with_nothing_to_change_is_left_byte_identical(tmp_path, run_cli):
    f = tmp_path / "mac.py"
    data = b"import keras\rx = 1\ry = 2\r"
    f.write_bytes(data)
    code, out, err = run_cli("rewrite", str(f))
    assert code == 0, err
    assert f.read_bytes() == data
    g = tmp_path / "mac2.py"
    g.write_bytes(KERAS1.replace("\n", "\r").encode())
    assert run_cli("rewrite", str(g))[0] == 1
    assert g.read_bytes() == KERAS2.replace("\n", "\r").encode()


def test_stdin_keeps_a_bom_and_reads_a_coding_cookie():
    result = subprocess.run([sys.executable, "-m", "kmigrate", "rewrite", "-"], capture_output=True,
                            input=b"\xef\xbb\xbf" + KERAS1.encode())
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"\xef\xbb\xbf" + KERAS2.encode()
    latin = ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + KERAS1).encode("latin-1")
    result = subprocess.run([sys.executable, "-m", "kmigrate", "rewrite", "-"], capture_output=True, input=latin)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + KERAS2).encode("latin-1")


def _tree(folder: Path, n: int) -> dict[Path, str]:
    files = {}
    for i in range(n):
        sub = folder / f"pkg{i % 7}"
        sub.mkdir(exist_ok=True)
        # some bulk so a run takes long enough to be interrupted
        body = KERAS1 + "".join(f"l{k} = Convolution2D({k + 1}, 3, 3, border_mode='same')\n" for k in range(40))
        p = sub / f"m{i}.py"
        p.write_text(body)
        files[p] = body
    return files


def _start(*args):
    return subprocess.Popen([sys.executable, "-m", "kmigrate", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _group_alive(pgid: int) -> bool:
    """Any process of the group still running (zombies waiting for a reaper do not count)."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _first_line(stream) -> str:
    """One line read from the pipe itself, a byte at a time: a buffered readline could take the lines
    after it too, which communicate() (reading the pipe, not the buffer) would then never see."""
    out = b""
    while not out.endswith(b"\n"):
        chunk = os.read(stream.fileno(), 1)
        if not chunk:
            break
        out += chunk
    return out.decode()


def test_ctrl_c_exits_130_reports_what_was_written_and_stops_the_workers(tmp_path):
    files = _tree(tmp_path, 120)
    proc = _start("rewrite", "-j", "2", str(tmp_path))
    # wait for the first rewrite, then interrupt the way a terminal does (the whole process group)
    deadline = time.time() + 60
    first = _first_line(proc.stderr)
    assert first.startswith("rewrote "), first
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    err = first + err
    assert proc.returncode == 130, err
    assert time.time() < deadline
    reported = {Path(line.split(" ", 1)[1]) for line in err.splitlines() if line.startswith("rewrote ")}
    changed = {p for p, body in files.items() if p.read_text() != body}
    assert reported == changed and 0 < len(changed) < len(files)
    assert err.strip().splitlines()[-1].startswith(f"interrupted: {len(changed)} file")
    time.sleep(0.3)
    assert not _group_alive(proc.pid)  # no worker left behind
    assert {p for p, body in files.items() if p.read_text() != body} == changed  # nothing written later


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigkill_at_random_moments_leaves_every_file_old_or_new(tmp_path, jobs):
    files = _tree(tmp_path, 60)
    expected = {}
    from kmigrate.rewrite.files import migrate_python

    for p, body in files.items():  # what each file becomes, computed without killing anything
        expected[p] = migrate_python(body, str(p))[0]
    rng = random.Random(int(jobs))
    for attempt in range(6):
        proc = _start("rewrite", "-j", jobs, str(tmp_path))
        time.sleep(rng.uniform(0.05, 1.2))
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers must not outlive it
        proc.communicate()
        for p, body in files.items():
            assert p.read_text() in (body, expected[p]), p
        time.sleep(0.2)
        assert not _group_alive(proc.pid)  # workers die with their parent
    # the next run finishes the job and leaves no temporary file anywhere
    result = _kmigrate("rewrite", "-j", jobs, str(tmp_path), timeout=300)
    assert result.returncode in (0, 1), result.stderr
    assert all(p.read_text() == expected[p] for p in files)
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(atomic.SUFFIX)] == []


def test_stale_temp_files_are_removed_but_a_live_runs_are_kept(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text(KERAS1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".m.py.{dead.pid}.0123abcd{atomic.SUFFIX}"
    stale.write_text("half a file")
    live = tmp_path / f".m.py.{os.getppid()}.89abcdef{atomic.SUFFIX}"  # a process that exists
    live.write_text("a file being written by an overlapping run")
    assert run_cli("rewrite", str(f))[0] == 1
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.py", live.name])


def test_atomic_replacing_for_path_writers(tmp_path):
    """The policy `weights convert` uses: a writer that needs a path (h5py) writes into `replacing`."""
    target = tmp_path / "new.h5"
    with atomic.replacing(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(atomic.SUFFIX) and str(os.getpid()) in tmp.name
        tmp.write_bytes(b"complete")
    assert target.read_bytes() == b"complete"
    with pytest.raises(RuntimeError):
        with atomic.replacing(target) as tmp:
            tmp.write_bytes(b"torn")
            raise RuntimeError("conversion failed")
    assert target.read_bytes() == b"complete"
    with atomic.replacing(target) as tmp:  # a result that failed its check: dropped without an error
        tmp.write_bytes(b"unproven")
        raise atomic.Discard()
    assert target.read_bytes() == b"complete"
    assert [p.name for p in tmp_path.iterdir()] == ["new.h5"]
    # a writer killed mid-write leaves its file; the next run's clean-up removes it
    child = subprocess.run([sys.executable, "-c", (
        "import os, sys; from pathlib import Path; from kmigrate import atomic\n"
        "with atomic.replacing(Path(sys.argv[1])) as tmp:\n"
        "    tmp.write_bytes(b'half'); os.kill(os.getpid(), 9)\n"), str(target)])
    assert child.returncode == -signal.SIGKILL
    assert len(atomic.stale_temp_files(tmp_path)) == 1
    atomic.clean_stale(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["new.h5"] and target.read_bytes() == b"complete"
