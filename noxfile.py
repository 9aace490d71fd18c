"""nox sessions: tests, lint, bench, demo (`nox -s NAME`)."""

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, with the real SAM2/CLIP code (random weights)."""
    session.install("-e", ".[models,test,postgres]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "lcrp_core", "tests", "bench", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark under bench/: prints a table each and writes JSON to bench/results/."""
    session.install("-e", ".[models,test]")
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    session.install("-e", ".")
    session.run("lcrp", "demo", *session.posargs)
