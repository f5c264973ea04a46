"""camlab.expect: fails under test, informs a learner; import camlab without TensorFlow."""

import subprocess
import sys

import pytest

import camlab

TEXTS = dict(expected="test accuracy >= 90%", measured="84.1%",
             meaning="The model is weaker than the lesson assumes.",
             advice="Raise EPOCHS in the Parameters cell.")


def learner(monkeypatch):
    monkeypatch.setenv("CAMLAB_FAST", "0")
    monkeypatch.delenv("CI", raising=False)


def test_a_met_expectation_is_silent_in_every_mode(monkeypatch, capsys):
    learner(monkeypatch)
    assert camlab.expect(True, **TEXTS) is True
    monkeypatch.setenv("CAMLAB_FAST", "1")
    assert camlab.expect(True, **TEXTS) is True
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("environment", [{"CAMLAB_FAST": "1"}, {"CI": "true"},
                                         {"CI": "true", "CAMLAB_FAST": "0"}])
def test_a_miss_under_test_raises_an_assertion_error_that_says_it_all(monkeypatch, environment):
    monkeypatch.delenv("CAMLAB_FAST", raising=False)
    monkeypatch.delenv("CI", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(AssertionError) as caught:
        camlab.expect(False, **TEXTS)
    assert isinstance(caught.value, camlab.ExpectationMissed)
    assert isinstance(caught.value, camlab.CamlabError)
    message = str(caught.value)
    assert all(text in message for text in TEXTS.values()), message


def test_a_miss_in_a_learners_run_prints_a_notice_and_goes_on(monkeypatch, capsys):
    learner(monkeypatch)
    assert camlab.expect(0.841 >= 0.9, **TEXTS) is False
    out = capsys.readouterr().out
    assert out.startswith("!" * 78) and "EXPECTATION MISSED: test accuracy >= 90%" in out
    flat = " ".join(line.removeprefix("!! ") for line in out.splitlines())
    for label, text in zip(("Expected:", "Measured:", "What it means:", "What to try:"),
                           TEXTS.values()):
        assert f"{label} {text}" in flat, flat
    assert "goes on" in flat


def test_numpy_conditions_work_and_arrays_are_refused(monkeypatch):
    np = pytest.importorskip("numpy")
    learner(monkeypatch)
    assert camlab.expect(np.float32(0.95) > 0.9, **TEXTS) is True
    with pytest.raises(ValueError):
        camlab.expect(np.array([True, False]), **TEXTS)


def test_import_without_tensorflow_says_to_choose_a_cpu_or_gpu_runtime():
    # As on Colab's TPU runtimes: no TensorFlow at all.
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "try:\n    import camlab\n"
            "except ImportError as error:\n"
            "    print(type(error).__name__, '|', error)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("TensorFlowMissingError |"), result.stdout + result.stderr
    assert "TPU" in result.stdout and "CPU" in result.stdout and "GPU" in result.stdout


def test_importing_camlab_first_hides_tensorflows_start_up_lines():
    # The oneDNN and CPU-instruction notices come from C++ while TensorFlow loads; a plain
    # `import tensorflow` prints them here, whatever TF_CPP_MIN_LOG_LEVEL says.
    code = "import camlab, sys; assert 'tensorflow' in sys.modules; print('oneDNN stays on')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "oneDNN" not in result.stderr and "cpu_feature_guard" not in result.stderr, result.stderr


def test_offline_flag(monkeypatch):
    monkeypatch.delenv("CAMLAB_OFFLINE", raising=False)
    assert not camlab.offline_mode()
    monkeypatch.setenv("CAMLAB_OFFLINE", "1")
    assert camlab.offline_mode()
    monkeypatch.setenv("CAMLAB_OFFLINE", "0")
    assert not camlab.offline_mode()
