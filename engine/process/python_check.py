"""Which Python the engine runs on, and the sentence for any other.

pyproject.toml pins the engine to Python 3.11 (``requires-python``), and its dependencies are built for that.
``engine/__main__.py`` checks first, before any engine module is imported, so a wrong Python says so instead of
failing on syntax or on packages it could never install; the client checks the ``python_version`` of the hello.
Written in syntax every Python since 2.7 reads, for the same reason: no f-strings, no annotations.
"""

import sys

REQUIRED = (3, 11)

# The first words of the line the engine prints on stderr when it refuses to run; the client looks for them.
MARKER = "engine: unsupported Python"


def required_text():
    return "%d.%d" % REQUIRED


def is_supported(version_text):
    """True for a version string such as '3.11.7' that is the required major.minor."""
    parts = str(version_text).split(".")
    try:
        return (int(parts[0]), int(parts[1])) == REQUIRED
    except (IndexError, ValueError):
        return False


def wrong_python_message(found, executable):
    """What the user reads when the engine Python is ``found`` (a version string, or None when unknown)."""
    what = "Python %s" % found if found else "a Python other than %s" % required_text()
    return ("The engine Python '%s' is %s, but the engine needs Python %s. Set 'Engine Python' in the add-on "
            "preferences to the .venv/bin/python that `make setup` makes (it uses python%s), or set "
            "DHANDLES_ENGINE_PYTHON to it; or leave 'Engine Python' empty and press Set Up Engine there." % (
                executable, what, required_text(), required_text()))


def refuse_unsupported():
    """Exit with a message on stderr unless this is the required Python."""
    found = "%d.%d.%d" % tuple(sys.version_info[:3])
    if not is_supported(found):
        sys.stderr.write("%s %s. %s\n" % (MARKER, found, wrong_python_message(found, sys.executable)))
        sys.exit(2)
