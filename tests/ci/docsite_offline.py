"""Prepare a docsite made by ``antsibull-docs sphinx-init`` to build offline, warnings as errors.

The generated pages refer to a few labels of the Ansible documentation, which Sphinx resolves
through an intersphinx inventory downloaded from docs.ansible.com. Builds here have no network:
this writes a small inventory with those labels (linking to the same pages of the published
documentation) and limits ``intersphinx_mapping`` to it, so that a missing reference still fails
the build. A label the pages start using that is not listed here fails this script, by name.

    python tests/ci/docsite_offline.py DOCSITE_DIR   (after antsibull-docs collection ... --dest-dir DOCSITE_DIR/rst)
"""

from __future__ import annotations

import os
import re
import sys
import zlib

ANSIBLE_DOCS = "https://docs.ansible.com/projects/ansible/devel/"
# label -> (page and anchor, title) in the Ansible documentation
ANSIBLE_LABELS = {
    "common_return_values": ("reference_appendices/common_return_values.html#common-return-values", "Return Values"),
    "callback_plugins": ("plugins/callback.html#callback-plugins", "Callback plugins"),
    "ansible_configuration_settings": ("reference_appendices/config.html#ansible-configuration-settings", "Ansible Configuration Settings"),
    "ansible_collections.ansible.builtin.async_status_module": (
        "collections/ansible/builtin/async_status_module.html#ansible-collections-ansible-builtin-async-status-module",
        "ansible.builtin.async_status module"),
}
REF = re.compile(r":ref:`(?:[^`<]*<)?([^`<>]+)>?`")
LABEL = re.compile(r"^\.\. _([^:]+):\s*$", re.M)


def rst_files(directory: str) -> list[str]:
    return [os.path.join(d, name) for d, _dirs, files in os.walk(directory) for name in files if name.endswith(".rst")]


def external_labels(rst_dir: str) -> set[str]:
    referenced, defined = set(), set()
    for path in rst_files(rst_dir):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        referenced.update(REF.findall(text))
        defined.update(LABEL.findall(text))
    return referenced - defined


def write_inventory(path: str, labels: set[str]) -> None:
    lines = ["%s std:label -1 %s %s" % (label, *ANSIBLE_LABELS[label]) for label in sorted(labels)]
    header = "# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n# The remainder of this file is compressed using zlib.\n"
    with open(path, "wb") as handle:
        handle.write(header.encode() + zlib.compress(("\n".join(lines) + "\n").encode()))


def main(docsite: str) -> int:
    labels = external_labels(os.path.join(docsite, "rst"))
    unknown = sorted(labels - set(ANSIBLE_LABELS))
    if unknown:
        print("docsite: references to labels defined nowhere: %s (add them to ANSIBLE_LABELS if they are Ansible's)" % ", ".join(unknown))
        return 1
    write_inventory(os.path.join(docsite, "ansible_devel.inv"), labels)
    with open(os.path.join(docsite, "conf.py"), "a", encoding="utf-8") as handle:
        handle.write("\n# Offline build: only the local inventory of the Ansible labels the pages use.\n"
                     "intersphinx_mapping = {'ansible_devel': (%r, '../ansible_devel.inv')}\n" % ANSIBLE_DOCS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
