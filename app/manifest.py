"""``python -m app.manifest FOLDER``: a folder's ``*.graphql`` operations as a trusted-documents
file (``TRUSTED_DOCUMENTS``), keyed by the sha256 clients send."""

from __future__ import annotations

import json
from pathlib import Path

from app.persisted import sha256_hex


def manifest(folder: Path) -> dict[str, str]:
    """The trusted documents of every ``*.graphql`` file in ``folder``, by sha256, sorted."""
    documents = {}
    for path in sorted(folder.glob("*.graphql")):
        text = path.read_text(encoding="utf-8")
        documents[sha256_hex(text)] = text
    return dict(sorted(documents.items()))


def main(argv: list[str]) -> int:
    """``python -m app.manifest FOLDER``: print FOLDER's operations as a trusted-documents file."""
    if len(argv) != 1:
        print("usage: python -m app.manifest FOLDER > trusted-documents.json")
        return 2
    print(json.dumps(manifest(Path(argv[0])), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
