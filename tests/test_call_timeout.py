"""Timeouts mean what they say: a suite's `_timeout=` is capped by `--call-timeout`."""

from __future__ import annotations

import time

import pytest

from grader.sandbox.bubblewrap import Limits
from grader.sandbox.proxy import SLOW_CALL_FACTOR, StudentProxy, StudentTimeout

SLEEPER = "import time\ndef nap(seconds):\n    time.sleep(seconds)\n    return seconds\n"


@pytest.fixture
def sleeper(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "sleeper.py").write_text(SLEEPER)
    proxy = StudentProxy("sleeper", folder / "sleeper.py", limits=Limits(call_timeout_s=2))
    yield proxy
    proxy.close()


def test_a_suite_cannot_stretch_a_call_beyond_the_slow_call_multiple(sleeper):
    assert sleeper.nap(0) == 0  # the worker is up: what follows times only the call
    started = time.monotonic()
    with pytest.raises(StudentTimeout, match=f"no answer within {2 * SLOW_CALL_FACTOR:.0f} s"):
        sleeper.call("nap", 100, _timeout=100)
    # Bounded far below the 100 s asked for (a hang guard, not a speed target).
    assert time.monotonic() - started < 60


def test_a_suite_may_ask_for_less_than_the_call_timeout(sleeper):
    with pytest.raises(StudentTimeout, match="no answer within 1 s"):
        sleeper.call("nap", 100, _timeout=1)


def test_within_the_cap_a_requested_timeout_is_honoured(sleeper):
    assert sleeper.call("nap", 3, _timeout=5) == 3  # longer than --call-timeout, under the cap


def test_the_help_states_the_slow_call_multiple():
    from click.testing import CliRunner

    from grader.cli import cli

    output = CliRunner().invoke(cli, ["batch", "--help"], terminal_width=200).output
    assert f"up to {SLOW_CALL_FACTOR:g} x this, never more" in output
