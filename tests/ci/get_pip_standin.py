"""Offline stand-in for the ``get-pip.py`` script that ``ansible-test`` downloads.

``ansible-test sanity`` bootstraps pip into each per-test virtualenv by running
``get-pip.py``, which it downloads unless it finds a cached copy at
``~/.ansible/test/cache/get_pip_<version>.py``. The download cannot succeed
here (only PyPI is reachable), so this file plays both roles:

* ``python tests/ci/get_pip_standin.py --install [--force]`` copies this file
  to that cache path (the version is asked from the installed ansible-test;
  24.2 is the fallback). An existing file is left alone unless it is an older
  copy of this stand-in or ``--force`` is given.

* When ansible-test runs the cached copy, it behaves like get-pip: it runs
  ``python -m ensurepip --default-pip`` and then ``python -m pip install`` with
  the arguments it was given, minus the get-pip-only options
  ``--no-setuptools`` and ``--no-wheel``.
"""

import os
import shutil
import subprocess
import sys
import tempfile

MARKER = "tablesync-get-pip-standin"  # identifies copies of this file in the cache
FALLBACK_PIP_VERSION = "24.2"
GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")


def ansible_test_pip_version():
    """Return the pip version the installed ansible-test bootstraps (e.g. '24.2')."""
    try:
        import types

        from ansible_test._internal.python_requirements import get_venv_packages

        version = "%d.%d" % sys.version_info[:2]
        return get_venv_packages(types.SimpleNamespace(version=version))["pip"]
    except Exception as exc:  # ansible-test internals are not a public API
        sys.stderr.write("get_pip_standin: cannot ask ansible-test for its pip version (%s); using %s\n" % (exc, FALLBACK_PIP_VERSION))
        return FALLBACK_PIP_VERSION


def cache_path(pip_version):
    return os.path.expanduser("~/.ansible/test/cache/get_pip_%s.py" % pip_version.replace(".", "_"))


def install(force=False):
    target = cache_path(ansible_test_pip_version())
    with open(__file__, "rb") as handle:
        content = handle.read()
    if os.path.exists(target) and not force:
        with open(target, "rb") as handle:
            current = handle.read()
        if current == content:
            print("get_pip_standin: %s is up to date" % target)
            return 0
        if MARKER.encode() not in current:
            print("get_pip_standin: %s exists and is not the stand-in; leaving it alone (use --force to replace)" % target)
            return 0
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.chmod(tmp, 0o644)
    shutil.move(tmp, target)
    print("get_pip_standin: wrote %s" % target)
    return 0


def bootstrap(args):
    """Act as get-pip.py: install pip into the running interpreter's environment."""
    pip_args = [arg for arg in args if arg not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    packages = [arg for arg in pip_args if not arg.startswith("-")]
    if not packages:
        return 0
    result = subprocess.call([sys.executable, "-m", "pip", "install"] + pip_args)
    if result != 0 and all(pkg.split("==")[0].strip().lower() == "pip" for pkg in packages):
        # Only pip itself was asked for and the index is out of reach: the
        # ensurepip-bundled pip is good enough for ansible-test's virtualenvs.
        sys.stderr.write("get_pip_standin: 'pip install %s' failed; keeping the pip that ensurepip installed\n" % " ".join(pip_args))
        return 0
    return result


def main(argv):
    if argv[:1] == ["--install"]:
        return install(force="--force" in argv[1:])
    return bootstrap(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
