"""`mnv3bench --version`: this tool's version and those of the converter and runtime it drives.

Read from the installed packages' metadata, never by importing them: importing TensorFlow
takes seconds and prints its own log lines.
"""

from __future__ import annotations

from importlib import metadata

from mnv3bench import __version__

# The first distribution installed wins: tensorflow-cpu on Linux x86-64, tensorflow elsewhere.
COMPONENTS = {
    "TensorFlow": ("tensorflow-cpu", "tensorflow"),
    "LiteRT": ("ai-edge-litert",),
}


def installed_version(distributions: tuple[str, ...]) -> str:
    for name in distributions:
        try:
            return f"{metadata.version(name)} ({name})"
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def version_text() -> str:
    lines = [f"mnv3bench {__version__}"]
    lines += [f"{label} {installed_version(dists)}" for label, dists in COMPONENTS.items()]
    return "\n".join(lines)
