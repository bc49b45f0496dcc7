"""The CI guard (tests/conftest.py): under CI=true every skip fails, however it was raised,
unless the test carries `skip_allowed_in_ci` with a reason; xfail stays xfail."""

from __future__ import annotations

import pytest

CONFTEST = "from tests.conftest import pytest_configure, pytest_make_collect_report, " \
           "pytest_runtest_makereport  # noqa: F401\n"

TESTS = '''
import pytest

@pytest.fixture
def missing_service():
    pytest.skip("no server here")

def test_direct_skip():
    pytest.skip("not today")

def test_importorskip():
    pytest.importorskip("no_such_module_anywhere")

@pytest.mark.skipif(True, reason="never here")
def test_skipif_marker():
    pass

def test_fixture_skip(missing_service):
    pass

@pytest.mark.skip_allowed_in_ci(reason="runs only on another platform")
def test_allowed():
    pytest.skip("other platform")

@pytest.mark.xfail(strict=True, reason="a known defect")
def test_expected_failure():
    assert False

def test_passes():
    pass
'''


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None,
        tests: str = TESTS) -> pytest.RunResult:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_sample=tests)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", "-rA")


def test_under_ci_every_unallowed_skip_fails(pytester: pytest.Pytester,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, "true")

    # A skip in a fixture or a skipif marker happens at setup: pytest counts it an error.
    result.assert_outcomes(passed=1, failed=2, errors=2, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["FAILED test_sample.py::test_direct_skip*",
                                 "FAILED test_sample.py::test_importorskip*"], consecutive=False)
    for name in ("test_skipif_marker", "test_fixture_skip"):
        result.stdout.fnmatch_lines([f"ERROR test_sample.py::{name} - skipped under CI=true*"])
    result.stdout.fnmatch_lines(
        ["*skipped under CI=true (Skipped: not today); a skip in CI needs *skip_allowed_in_ci*"])


def test_on_a_laptop_skips_stay_skips(pytester: pytest.Pytester,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run(pytester, monkeypatch, None).assert_outcomes(passed=1, skipped=5, xfailed=1)


def test_a_module_skipped_at_import_fails_under_ci(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, "true",
                 'import pytest\npytest.importorskip("no_such_module_anywhere")\n'
                 'def test_x():\n    pass\n')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*module skipped under CI=true*no_such_module_anywhere*"])


def test_the_allow_marker_needs_a_reason(pytester: pytest.Pytester,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, "true",
                 'import pytest\n@pytest.mark.skip_allowed_in_ci\n'
                 'def test_x():\n    pytest.skip("why")\n')
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*skip_allowed_in_ci needs a reason*"])
