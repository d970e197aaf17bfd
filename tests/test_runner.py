"""The library side of `kmigrate rewrite`: a run is a value (results, summary, exit code) without a CLI."""

from kmigrate.diagnostics import Status
from kmigrate.rewrite.runner import EXIT_CHANGED, EXIT_ERROR, EXIT_OK, Settings, run, run_data
from kmigrate.spec.model import Options

KERAS1 = "from keras.layers import Convolution2D\nlayer = Convolution2D(8, 3, 3, border_mode='same')\n"
KERAS2 = "from keras.layers import Conv2D\nlayer = Conv2D(8, (3, 3), padding='same')\n"


def test_run_returns_results_and_the_exit_policy(tmp_path):
    (tmp_path / "a.py").write_text(KERAS1)
    (tmp_path / "b.py").write_text("import os\n")
    seen = []
    outcome = run([str(tmp_path)], Settings(write=False), seen.append)
    assert {r.path.rsplit("/", 1)[-1]: r.status for r in outcome.results} == {
        "a.py": Status.CHANGED, "b.py": Status.SKIPPED}
    assert seen == outcome.results
    assert outcome.results[0].new_text == KERAS2 and (tmp_path / "a.py").read_text() == KERAS1
    assert outcome.exit_code == EXIT_CHANGED
    assert outcome.summary() == "1 file would be rewritten, 1 file left unchanged"
    outcome = run([str(tmp_path)], Settings(exit_zero_even_if_changed=True, jobs=2))
    assert outcome.exit_code == EXIT_OK and (tmp_path / "a.py").read_text() == KERAS2
    assert outcome.summary() == "1 file rewritten, 1 file left unchanged"
    outcome = run([str(tmp_path / "missing.py")], Settings())
    assert outcome.exit_code == EXIT_ERROR and outcome.summary() == "1 file with errors"


def test_run_data_is_a_filter(tmp_path):
    outcome, output = run_data("-", KERAS1.encode(), Settings(options=Options()))
    assert output == KERAS2.encode() and outcome.exit_code == EXIT_OK  # printed: success
    outcome, output = run_data("-", KERAS1.encode(), Settings(write=False))
    assert outcome.exit_code == EXIT_CHANGED  # --check
